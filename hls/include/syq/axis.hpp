// AXI-stream adapters between the accelerator's top-level ports and its internal element streams.
//
// Frame formats (generator/packing.py pack_axi_frames / unpack_axi_frames implement the same):
// - input (axis_to_stream): the FrameElements elements of a frame are packed LSB first into AxiBits-wide
//   words, ElementBits per element, never straddling words. Each frame starts a new word and its last
//   word is padded with lanes that are ignored.
// - output (stream_to_axis): each element is sign-extended (kSigned) or zero-extended (kUnsigned and
//   kBipolar, whose raw bit is kept) into ContainerBits, then packed the same way. Padding lanes are 0,
//   `keep` and `strb` are all ones, and `last` is set on the final word of the final frame of the call.
#ifndef SYQ_AXIS_HPP
#define SYQ_AXIS_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"
#include "syq/stream.hpp"

// Vitis HLS ships ap_axi_sdata.h with hls::axis, but the open-source ap_types headers do not.
#if defined(__has_include)
#if __has_include(<ap_axi_sdata.h>)
#include <ap_axi_sdata.h>
#define SYQ_HAVE_AP_AXI_SDATA 1
#endif
#endif

namespace syq {

#ifdef SYQ_HAVE_AP_AXI_SDATA
// NOTE: the test suite compiles only against the open-source headers, so this branch is untested.
// hls::axis<T, 0, 0, 0> comes with Vitis HLS. An ap_axi_sdata.h with only ap_axiu (as in older Vivado
// HLS releases) fails to compile here.
/// One AXI-stream beat of Bits data bits, without user, id and dest signals.
template <unsigned Bits>
using AxisWord = hls::axis<ap_uint<Bits>, 0, 0, 0>;
#else
/// One AXI-stream beat of Bits data bits: the C-simulation stand-in for hls::axis<ap_uint<Bits>, 0, 0, 0>,
/// with the same field names.
template <unsigned Bits>
struct AxisWord {
  ap_uint<Bits> data;
  ap_uint<(Bits + 7) / 8> keep;  ///< byte enables, one bit per data byte
  ap_uint<(Bits + 7) / 8> strb;  ///< byte qualifiers, one bit per data byte
  ap_uint<1> last;               ///< TLAST: end of the transfer
};
#endif

namespace detail {

/// Reads the data field of an AXI-stream beat and ignores keep, strb and last.
template <unsigned AxiBits>
struct AxisReader {
  typedef hls::stream<AxisWord<AxiBits> > Stream;
  static ap_uint<AxiBits> read(Stream& stream) {
#pragma HLS INLINE
    AxisWord<AxiBits> beat = stream.read();
    return beat.data;
  }
};

/// Writes an AXI-stream beat with all bytes valid and TLAST from the end-of-call flag.
template <unsigned AxiBits>
struct AxisWriter {
  typedef hls::stream<AxisWord<AxiBits> > Stream;
  static void write(Stream& stream, const ap_uint<AxiBits>& data, bool last) {
#pragma HLS INLINE
    AxisWord<AxiBits> beat;
    beat.data = data;
    beat.keep = ~ap_uint<(AxiBits + 7) / 8>(0);
    beat.strb = ~ap_uint<(AxiBits + 7) / 8>(0);
    beat.last = last ? 1 : 0;
    stream.write(beat);
  }
};

/// Reads a word of Elements elements and widens every element to ContainerBits (sign extension for
/// kSigned, zero extension otherwise).
template <unsigned Elements, unsigned ElementBits, int Kind, unsigned ContainerBits>
struct ExtendingReader {
  typedef hls::stream<ap_uint<Elements * ElementBits> > Stream;
  static ap_uint<Elements * ContainerBits> read(Stream& stream) {
#pragma HLS INLINE
    const ap_uint<Elements * ElementBits> word = stream.read();
    ap_uint<Elements * ContainerBits> wide = 0;
    for (unsigned lane = 0; lane < Elements; lane++) {
#pragma HLS UNROLL
      const ap_uint<ElementBits> raw = get_lane<ElementBits>(word, lane);
      ap_uint<ContainerBits> container;
      if (Kind == kSigned) {
        container = ap_uint<ContainerBits>(ap_int<ContainerBits>(ap_int<ElementBits>(raw)));
      } else {
        container = ap_uint<ContainerBits>(raw);
      }
      set_lane<ContainerBits>(wide, lane, container);
    }
    return wide;
  }
};

}  // namespace detail

/// Unpacks frames from an AXI-stream input into an element stream.
///
/// \tparam AxiBits        AXI data width, a multiple of 8 and of ElementBits.
/// \tparam ElementBits    bits per element in both streams.
/// \tparam OutElements    elements per output word, a divisor of FrameElements.
/// \tparam FrameElements  elements per frame. A frame occupies ceil(FrameElements / (AxiBits / ElementBits))
///                        AXI words.
/// \param frames          number of frames to convert.
template <unsigned AxiBits, unsigned ElementBits, unsigned OutElements, unsigned FrameElements>
void axis_to_stream(hls::stream<AxisWord<AxiBits> >& in, hls::stream<ap_uint<OutElements * ElementBits> >& out,
                    unsigned frames) {
#pragma HLS INLINE off
  static_assert(AxiBits % 8 == 0, "AXI-stream data width must be a multiple of 8 bits");
  static_assert(AxiBits % ElementBits == 0, "axis_to_stream needs ElementBits to divide AxiBits");
  static_assert(FrameElements % OutElements == 0, "axis_to_stream needs OutElements to divide FrameElements");
  detail::repack_groups<AxiBits / ElementBits, OutElements, ElementBits, FrameElements, detail::AxisReader<AxiBits>,
                        detail::PlainWriter<OutElements * ElementBits> >(in, out, frames);
}

/// Packs an element stream into AXI-stream words, each element in a ContainerBits-wide slot.
///
/// \tparam InElements     elements per input word.
/// \tparam ElementBits    bits per input element.
/// \tparam Kind           ElementKind of the input elements. kSigned elements are sign-extended into their
///                        container, the others are zero-extended.
/// \tparam ContainerBits  slot width per element: a power of two, at least 8 and at least ElementBits.
/// \tparam AxiBits        AXI data width, a multiple of ContainerBits.
/// \tparam FrameElements  elements per frame, a multiple of InElements. Each frame is padded with zero
///                        slots to whole AXI words.
/// \param frames          number of frames. `last` marks the final word of the final frame.
template <unsigned InElements, unsigned ElementBits, int Kind, unsigned ContainerBits, unsigned AxiBits,
          unsigned FrameElements>
void stream_to_axis(hls::stream<ap_uint<InElements * ElementBits> >& in, hls::stream<AxisWord<AxiBits> >& out,
                    unsigned frames) {
#pragma HLS INLINE off
  static_assert(AxiBits % 8 == 0, "AXI-stream data width must be a multiple of 8 bits");
  static_assert(ContainerBits >= 8 && (ContainerBits & (ContainerBits - 1)) == 0,
                "stream_to_axis ContainerBits must be a power of two and at least 8");
  static_assert(ContainerBits >= ElementBits, "stream_to_axis ContainerBits must be at least ElementBits");
  static_assert(AxiBits % ContainerBits == 0, "stream_to_axis needs ContainerBits to divide AxiBits");
  static_assert(FrameElements % InElements == 0, "stream_to_axis needs InElements to divide FrameElements");
  detail::repack_groups<InElements, AxiBits / ContainerBits, ContainerBits, FrameElements,
                        detail::ExtendingReader<InElements, ElementBits, Kind, ContainerBits>,
                        detail::AxisWriter<AxiBits> >(in, out, frames);
}

}  // namespace syq

#endif  // SYQ_AXIS_HPP
