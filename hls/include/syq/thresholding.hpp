// Standalone per-channel multi-threshold unit, used for input pre-processing (for example 8-bit
// pixels quantized to the first layer's input codes).
//
// Cycles: vectors * channel_folds at II=1, plus the pipeline depth.
#ifndef SYQ_THRESHOLDING_HPP
#define SYQ_THRESHOLDING_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"

namespace syq {

/// Constants derived from a thresholding Config, and the compile-time checks of its members.
/// \tparam Config  channels, pe (channels per word, divides channels), input_bits / input_kind,
///   num_thresholds (>= 1), threshold_bits (signed threshold width), output_offset,
///   output_bits / output_kind.
template <typename Config>
struct ThresholdingShape {
  static_assert(Config::pe >= 1 && Config::channels % Config::pe == 0, "thresholding pe must divide channels");
  static_assert(Config::num_thresholds >= 1, "thresholding needs num_thresholds >= 1");
  static_assert(Config::output_kind != kBipolar || (Config::num_thresholds == 1 && Config::output_offset == 0),
                "a bipolar thresholding output needs num_thresholds == 1 and output_offset == 0");
  static_assert(Config::output_kind != kBipolar || Config::output_bits == 1, "bipolar outputs are 1 bit wide");

  /// Words per vector of `channels` elements.
  static const unsigned channel_folds = Config::channels / Config::pe;
  /// Width of the threshold count, which ranges over 0..num_thresholds.
  static const unsigned count_bits = ceil_log2(Config::num_thresholds + 1);
  /// Comparison width: wide enough for both the decoded input and the thresholds.
  static const unsigned compare_bits =
      max_constant(ElementValue<Config::input_kind, Config::input_bits>::bits, Config::threshold_bits);
};

/// Multi-threshold activation per channel.
///
/// Element of channel ch = fold * pe + lane becomes output_offset + #{k : x >= thresholds[lane][fold][k]},
/// written as the low output_bits bits. Thresholds need not be distinct or sorted.
///
/// \param in          vectors * channel_folds words of pe input elements.
/// \param out         vectors * channel_folds words of pe output elements.
/// \param thresholds  thresholds[ch % pe][ch / pe][k], signed threshold_bits wide.
/// \param vectors     number of vectors of `channels` elements to process.
template <typename Config>
void thresholding(hls::stream<ap_uint<Config::pe * Config::input_bits> >& in,
                  hls::stream<ap_uint<Config::pe * Config::output_bits> >& out,
                  const ap_int<Config::threshold_bits> thresholds[Config::pe][ThresholdingShape<Config>::channel_folds]
                                                                 [Config::num_thresholds],
                  unsigned vectors) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=thresholds complete dim=1
#pragma HLS ARRAY_PARTITION variable=thresholds complete dim=3
  typedef ThresholdingShape<Config> Shape;
  typedef ap_int<Shape::compare_bits> Compared;

  unsigned fold = 0;
  const unsigned iterations = vectors * Shape::channel_folds;
  for (unsigned iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
    const ap_uint<Config::pe * Config::input_bits> input = in.read();
    ap_uint<Config::pe * Config::output_bits> output = 0;
    for (unsigned lane = 0; lane < Config::pe; lane++) {
#pragma HLS UNROLL
      const Compared value =
          decode_element<Config::input_kind, Config::input_bits>(get_lane<Config::input_bits>(input, lane));
      ap_uint<Shape::count_bits> count = 0;
      for (unsigned k = 0; k < Config::num_thresholds; k++) {
#pragma HLS UNROLL
        count += (value >= Compared(thresholds[lane][fold][k])) ? 1 : 0;
      }
      const ap_int<33> level = ap_int<33>(Config::output_offset) + count;
      set_lane<Config::output_bits>(output, lane, ap_uint<Config::output_bits>(level));
    }
    out.write(output);
    fold = fold == Shape::channel_folds - 1 ? 0 : fold + 1;
  }
}

}  // namespace syq

#endif  // SYQ_THRESHOLDING_HPP
