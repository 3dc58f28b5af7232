// Stream width conversion between words of different element counts.
//
// The core (detail::repack_groups) moves groups of elements between words of InElements and words of
// OutElements lanes through a shift buffer of InElements + OutElements - 1 elements. Each cycle it
// reads one input word when fewer than OutElements elements are buffered and writes one output word
// when a full word (or the rest of the group) is buffered, so it handles any pair of word sizes.
// The AXI-stream adapters in syq/axis.hpp reuse it with other word types.
#ifndef SYQ_STREAM_HPP
#define SYQ_STREAM_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"

namespace syq {

/// Compile-time description of how one group of elements moves from input to output words.
/// \tparam InElements     elements per input word.
/// \tparam OutElements    elements per output word.
/// \tparam GroupElements  elements per group. The last input word of a group may be partial (its
///                        high lanes are ignored) and so may the last output word (its high lanes are 0).
template <unsigned InElements, unsigned OutElements, unsigned GroupElements>
struct RepackSchedule {
  static_assert(InElements >= 1 && OutElements >= 1 && GroupElements >= 1,
                "element counts of a width conversion must be at least 1");

  static const unsigned input_words = ceil_div(GroupElements, InElements);
  static const unsigned output_words = ceil_div(GroupElements, OutElements);
  /// Valid elements in the last input word of a group.
  static const unsigned last_input_elements = GroupElements - (input_words - 1) * InElements;
  /// Buffer capacity: fewer than OutElements elements are left when a word of InElements arrives.
  static const unsigned buffer_elements = InElements + OutElements - 1;

  /// Cycles per group, found by running the same read/write rules as repack_groups.
  /// NOTE: g++ runs this loop at compile time and stops at 262144 iterations by default
  /// (-fconstexpr-loop-limit), which limits a group to about that many input plus output words.
  static constexpr unsigned cycles_per_group() {
    unsigned fill = 0;
    unsigned words_read = 0;
    unsigned cycles = 0;
    do {
      cycles++;
      if (words_read < input_words && fill < OutElements) {
        fill += words_read == input_words - 1 ? last_input_elements : InElements;
        words_read++;
      }
      if (fill >= OutElements || (words_read == input_words && fill > 0)) {
        fill = fill > OutElements ? fill - OutElements : 0;
      }
    } while (!(words_read == input_words && fill == 0));
    return cycles;
  }
};

namespace detail {

/// Reads the payload of a plain hls::stream<ap_uint<Bits>>.
template <unsigned Bits>
struct PlainReader {
  typedef hls::stream<ap_uint<Bits> > Stream;
  static ap_uint<Bits> read(Stream& stream) {
#pragma HLS INLINE
    return stream.read();
  }
};

/// Writes a payload to a plain hls::stream<ap_uint<Bits>> (the end-of-call flag is not needed).
template <unsigned Bits>
struct PlainWriter {
  typedef hls::stream<ap_uint<Bits> > Stream;
  static void write(Stream& stream, const ap_uint<Bits>& data, bool) {
#pragma HLS INLINE
    stream.write(data);
  }
};

/// Moves `groups` groups of GroupElements elements of ElementBits bits from words of InElements lanes
/// (read through Reader::read) to words of OutElements lanes (written through Writer::write, whose
/// flag marks the last word of the call). Reader::Stream and Writer::Stream are the stream types.
///
/// Cycles per group: RepackSchedule::cycles_per_group(), between max(input_words, output_words) and
/// input_words + output_words.
template <unsigned InElements, unsigned OutElements, unsigned ElementBits, unsigned GroupElements, typename Reader,
          typename Writer>
inline void repack_groups(typename Reader::Stream& in, typename Writer::Stream& out, unsigned groups) {
#pragma HLS INLINE
  typedef RepackSchedule<InElements, OutElements, GroupElements> Schedule;
  const unsigned buffer_bits = Schedule::buffer_elements * ElementBits;

  // Elements waiting for output, the oldest at the LSB. Bits at and above fill * ElementBits are
  // stale and get masked when the next word arrives.
  ap_uint<buffer_bits> buffer = 0;
  unsigned fill = 0;
  unsigned words_read = 0;
  unsigned words_written = 0;

  const unsigned total_output_words = groups * Schedule::output_words;
  const unsigned iterations = groups * Schedule::cycles_per_group();
  for (unsigned iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
    if (words_read == Schedule::input_words && fill == 0) {
      words_read = 0;  // the previous group is complete
    }

    if (words_read < Schedule::input_words && fill < OutElements) {
      const ap_uint<buffer_bits> incoming = Reader::read(in);
      buffer = (buffer & low_mask<buffer_bits>(fill * ElementBits)) | (incoming << (fill * ElementBits));
      fill += words_read == Schedule::input_words - 1 ? Schedule::last_input_elements : InElements;
      words_read++;
    }

    if (fill >= OutElements || (words_read == Schedule::input_words && fill > 0)) {
      ap_uint<OutElements * ElementBits> word = buffer(OutElements * ElementBits - 1, 0);
      if (fill < OutElements) {
        word &= low_mask<OutElements * ElementBits>(fill * ElementBits);  // zero padding lanes
      }
      Writer::write(out, word, words_written == total_output_words - 1);
      words_written++;
      buffer >>= OutElements * ElementBits;
      fill = fill > OutElements ? fill - OutElements : 0;
    }
  }
}

}  // namespace detail

/// Stream width converter.
///
/// A group of GroupElements elements arrives as ceil(GroupElements / InElements) words, whose last
/// word may be partial (its unused high lanes are ignored), and leaves as GroupElements / OutElements
/// full words. Any InElements and OutElements work. Equal sizes with whole input words are a plain
/// copy at one word per cycle. Otherwise detail::repack_groups documents the cycle count.
///
/// \tparam InElements     elements per input word.
/// \tparam OutElements    elements per output word, a divisor of GroupElements.
/// \tparam ElementBits    bits per element.
/// \tparam GroupElements  elements per group (for example one image or one matrix row block).
/// \param groups          number of groups to convert.
template <unsigned InElements, unsigned OutElements, unsigned ElementBits, unsigned GroupElements>
void convert_width(hls::stream<ap_uint<InElements * ElementBits> >& in,
                   hls::stream<ap_uint<OutElements * ElementBits> >& out, unsigned groups) {
#pragma HLS INLINE off
  static_assert(GroupElements % OutElements == 0, "convert_width needs OutElements to divide GroupElements");
  if (InElements == OutElements) {
    const unsigned iterations = groups * (GroupElements / InElements);
    for (unsigned iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
      out.write(ap_uint<OutElements * ElementBits>(in.read()));
    }
  } else {
    detail::repack_groups<InElements, OutElements, ElementBits, GroupElements,
                          detail::PlainReader<InElements * ElementBits>,
                          detail::PlainWriter<OutElements * ElementBits> >(in, out, groups);
  }
}

}  // namespace syq

#endif  // SYQ_STREAM_HPP
