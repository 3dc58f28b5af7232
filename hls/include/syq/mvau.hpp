// Streaming matrix-vector-activation unit (MVAU): one row-block of a binary, ternary or integer
// weight matrix times a stream of input vectors, followed by multi-threshold activation
// (mvau_threshold) or by the raw accumulator (mvau_raw).
//
// Folding: PE rows and SIMD columns are processed per clock cycle. Row r belongs to processing
// element (PE) r % pe and neuron fold r / pe. Column c is lane c % simd of synapse fold c / simd.
// The weight memory of PE p contains neuron_folds * synapse_folds words of simd lanes, ordered by
// nf * synapse_folds + sf. Each input vector is read once (synapse_folds words) and replayed from a
// local buffer for the other neuron folds. Output word nf contains rows nf * pe + lane.
//
// Cycles: vectors * neuron_folds * synapse_folds at II=1, plus the pipeline depth.
#ifndef SYQ_MVAU_HPP
#define SYQ_MVAU_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"

namespace syq {

/// Constants derived from an MVAU Config, and the compile-time checks of its members.
///
/// The Config is a struct of `static const` members:
/// \tparam Config  matrix_width (MW, columns = input vector length), matrix_height (MH, rows),
///   simd (columns per cycle, divides MW), pe (rows per cycle, divides MH),
///   input_bits / input_kind, weight_bits / weight_kind (ElementKind values),
///   xnor (true: bipolar inputs and weights, the accumulator counts matching lanes),
///   kernel_positions (1, or the number of column groups with their own scale),
///   position_elements (MW / kernel_positions consecutive columns per scale), scale_bits,
///   accumulator_bits (width of the signed accumulator), num_thresholds, output_offset,
///   output_bits / output_kind.
template <typename Config>
struct MvauShape {
  static_assert(Config::simd >= 1 && Config::pe >= 1, "MVAU simd and pe must be at least 1");
  static_assert(Config::matrix_width % Config::simd == 0, "MVAU simd must divide matrix_width");
  static_assert(Config::matrix_height % Config::pe == 0, "MVAU pe must divide matrix_height");
  static_assert(Config::kernel_positions >= 1, "MVAU kernel_positions must be at least 1");
  static_assert(Config::position_elements * Config::kernel_positions == Config::matrix_width,
                "MVAU position_elements * kernel_positions must equal matrix_width");
  static_assert(Config::kernel_positions == 1 || Config::position_elements % Config::simd == 0,
                "MVAU simd must divide position_elements so that a word never spans two scales");
  static_assert(!Config::xnor || (Config::input_kind == kBipolar && Config::weight_kind == kBipolar),
                "MVAU xnor mode needs bipolar inputs and bipolar weights");
  static_assert(Config::accumulator_bits >= 2, "MVAU accumulator_bits must be at least 2");

  /// Number of input words per vector (MW / SIMD).
  static const unsigned synapse_folds = Config::matrix_width / Config::simd;
  /// Number of output words per vector (MH / PE).
  static const unsigned neuron_folds = Config::matrix_height / Config::pe;
  /// Weight words per PE memory.
  static const unsigned tiles = neuron_folds * synapse_folds;
  /// Input words that share one kernel-position scale.
  static const unsigned words_per_position = Config::position_elements / Config::simd;

  static const unsigned input_word_bits = Config::simd * Config::input_bits;
  static const unsigned weight_word_bits = Config::simd * Config::weight_bits;
  static const unsigned output_word_bits = Config::pe * Config::output_bits;

  /// Width of one signed lane product: an a-bit by b-bit signed product has a magnitude of at most
  /// 2^(a+b-2) and fits a + b bits. In xnor mode a lane contributes 0 or 1.
  static const unsigned product_bits =
      Config::xnor ? 2
                   : ElementValue<Config::input_kind, Config::input_bits>::bits +
                         ElementValue<Config::weight_kind, Config::weight_bits>::bits;
  /// Width of the sum of the SIMD lane products of one word: n products of magnitude at most
  /// 2^(product_bits-2) sum to at most 2^(product_bits-2+ceil_log2(n)).
  static const unsigned word_sum_bits = product_bits + ceil_log2(Config::simd);
  /// Width of the unscaled partial sum over one kernel position (same bound as word_sum_bits).
  static const unsigned partial_bits = product_bits + ceil_log2(Config::position_elements);
  /// Width of the threshold count, which ranges over 0..num_thresholds.
  static const unsigned count_bits = max_constant(ceil_log2(Config::num_thresholds + 1), 1);

  typedef ap_uint<input_word_bits> InputWord;
  typedef ap_uint<weight_word_bits> WeightWord;
  typedef ap_uint<output_word_bits> OutputWord;
  typedef ap_int<Config::accumulator_bits> Accumulator;
  /// Threshold type: one bit wider than the accumulator so that thresholds just outside its
  /// range (never or always reached) are representable.
  typedef ap_int<Config::accumulator_bits + 1> Threshold;
  /// The threshold array parameter after decay: a pointer to the [neuron_folds][num_thresholds] block of a PE.
  typedef const Threshold (*ThresholdRows)[neuron_folds][max_constant(Config::num_thresholds, 1)];
};

namespace detail {

/// Product of one input lane and one weight lane: a +-x select for bipolar weights or inputs,
/// 1 for a match in xnor mode, otherwise a signed multiply (2-bit by b-bit for ternary weights).
template <typename Config>
inline ap_int<MvauShape<Config>::product_bits> lane_product(const ap_uint<Config::input_bits>& input_raw,
                                                           const ap_uint<Config::weight_bits>& weight_raw) {
#pragma HLS INLINE
  typedef ap_int<MvauShape<Config>::product_bits> Product;
  if (Config::xnor) {
    return Product(input_raw[0] == weight_raw[0] ? 1 : 0);
  }
  if (Config::weight_kind == kBipolar) {
    Product x = decode_element<Config::input_kind, Config::input_bits>(input_raw);
    return weight_raw[0] ? Product(x) : Product(-x);
  }
  if (Config::input_kind == kBipolar) {
    Product w = decode_element<Config::weight_kind, Config::weight_bits>(weight_raw);
    return input_raw[0] ? Product(w) : Product(-w);
  }
  return Product(decode_element<Config::input_kind, Config::input_bits>(input_raw) *
                 decode_element<Config::weight_kind, Config::weight_bits>(weight_raw));
}

#if !defined(__SYNTHESIS__) && !defined(SYQ_CSIM_HLS_ARITHMETIC)
// C-simulation computes the word sums on native 64-bit integers. With ap_int arithmetic, a CNV-28
// image took about 2 s of C-simulation on a loaded 2-core machine, against 0.25 s natively.
// The values equal those of the ap_int code below, which synthesis uses. Define
// SYQ_CSIM_HLS_ARITHMETIC to simulate that code instead; the MVAU tests run both.
#define SYQ_MVAU_NATIVE_WORD_SUM 1

/// Decodes the raw bits of one element into its signed value on a native integer.
template <int Kind, unsigned Bits>
inline long long decode_native(unsigned long long raw) {
  if (Kind == kBipolar) {
    return (raw & 1) ? 1 : -1;
  }
  if (Kind == kSigned) {
    return static_cast<long long>(raw << (64 - Bits)) >> (64 - Bits);
  }
  return static_cast<long long>(raw);
}

/// Computes lane_product on native integers.
template <typename Config>
inline long long lane_product_native(unsigned long long input_raw, unsigned long long weight_raw) {
  if (Config::xnor) {
    return (input_raw & 1) == (weight_raw & 1) ? 1 : 0;
  }
  if (Config::weight_kind == kBipolar) {
    const long long x = decode_native<Config::input_kind, Config::input_bits>(input_raw);
    return (weight_raw & 1) ? x : -x;
  }
  if (Config::input_kind == kBipolar) {
    const long long w = decode_native<Config::weight_kind, Config::weight_bits>(weight_raw);
    return (input_raw & 1) ? w : -w;
  }
  return decode_native<Config::input_kind, Config::input_bits>(input_raw) *
         decode_native<Config::weight_kind, Config::weight_bits>(weight_raw);
}
#endif

/// Sum of the SIMD lane products of one input word and one weight word (an adder tree after unrolling).
///
/// Lanes are read from 64-bit slices of the words, because shifting a word wider than 64 bits is
/// costly in C-simulation (ap_uint keeps it in an array of limbs). Each slice is shifted out once,
/// and its lanes are taken with shifts of a native 64-bit value. A slice contains whole lanes only.
template <typename Config>
inline ap_int<MvauShape<Config>::word_sum_bits> word_dot_product(const typename MvauShape<Config>::InputWord& input,
                                                                 const typename MvauShape<Config>::WeightWord& weights) {
#pragma HLS INLINE
  static_assert(Config::input_bits <= 64 && Config::weight_bits <= 64, "MVAU elements are at most 64 bits wide");
  const unsigned input_lanes_per_slice = 64 / Config::input_bits;
  const unsigned weight_lanes_per_slice = 64 / Config::weight_bits;
#ifdef SYQ_MVAU_NATIVE_WORD_SUM
  const unsigned long long input_mask = ~0ULL >> (64 - Config::input_bits);
  const unsigned long long weight_mask = ~0ULL >> (64 - Config::weight_bits);
  unsigned long long input_bits_left = 0;
  unsigned long long weight_bits_left = 0;
  long long native_sum = 0;
  for (unsigned lane = 0; lane < Config::simd; lane++) {
    if (lane % input_lanes_per_slice == 0) {
      input_bits_left = ap_uint<64>(input >> (lane * Config::input_bits)).to_uint64();
    }
    if (lane % weight_lanes_per_slice == 0) {
      weight_bits_left = ap_uint<64>(weights >> (lane * Config::weight_bits)).to_uint64();
    }
    native_sum += lane_product_native<Config>(input_bits_left & input_mask, weight_bits_left & weight_mask);
    // Config::*_bits may be 64, and a shift by the full width is undefined, hence two steps.
    input_bits_left = (input_bits_left >> (Config::input_bits - 1)) >> 1;
    weight_bits_left = (weight_bits_left >> (Config::weight_bits - 1)) >> 1;
  }
  return ap_int<MvauShape<Config>::word_sum_bits>(native_sum);
#else
  ap_uint<64> input_slice = 0;
  ap_uint<64> weight_slice = 0;
  ap_int<MvauShape<Config>::word_sum_bits> sum = 0;
  for (unsigned lane = 0; lane < Config::simd; lane++) {
#pragma HLS UNROLL
    if (lane % input_lanes_per_slice == 0) {
      input_slice = ap_uint<64>(input >> (lane * Config::input_bits));
    }
    if (lane % weight_lanes_per_slice == 0) {
      weight_slice = ap_uint<64>(weights >> (lane * Config::weight_bits));
    }
    sum += lane_product<Config>(get_lane<Config::input_bits>(input_slice, lane % input_lanes_per_slice),
                                get_lane<Config::weight_bits>(weight_slice, lane % weight_lanes_per_slice));
  }
  return sum;
#endif
}

/// Marker passed in place of a threshold array by mvau_raw.
struct NoThresholds {};

/// Raw-accumulator output: the accumulator bits unchanged.
template <typename Config>
inline ap_uint<Config::output_bits> activate(const NoThresholds&, unsigned, unsigned,
                                             const typename MvauShape<Config>::Accumulator& accumulator) {
#pragma HLS INLINE
  return ap_uint<Config::output_bits>(accumulator);
}

/// Threshold output: output_offset + number of thresholds k with accumulator >= T[k], as raw output bits.
/// All num_thresholds comparators of a PE work in parallel.
template <typename Config>
inline ap_uint<Config::output_bits> activate(typename MvauShape<Config>::ThresholdRows thresholds,
                                             unsigned neuron_fold, unsigned pe_index,
                                             const typename MvauShape<Config>::Accumulator& accumulator) {
#pragma HLS INLINE
  ap_uint<MvauShape<Config>::count_bits> count = 0;
  for (unsigned k = 0; k < Config::num_thresholds; k++) {
#pragma HLS UNROLL
    count += (accumulator >= thresholds[pe_index][neuron_fold][k]) ? 1 : 0;
  }
  ap_int<33> level = ap_int<33>(Config::output_offset) + count;
  return ap_uint<Config::output_bits>(level);
}

/// Runs the flattened MVAU loop of mvau_threshold and mvau_raw. The type of `thresholds` selects the activation.
template <typename Config, typename Thresholds, typename WeightStorage>
inline void mvau_loop(hls::stream<typename MvauShape<Config>::InputWord>& in,
                      hls::stream<typename MvauShape<Config>::OutputWord>& out,
                      const WeightStorage weights[Config::pe][MvauShape<Config>::tiles],
                      const ap_uint<Config::scale_bits> position_scales[Config::kernel_positions],
                      const Thresholds& thresholds, unsigned vectors) {
#pragma HLS INLINE
  typedef MvauShape<Config> Shape;
  typedef typename Shape::Accumulator Accumulator;
  typedef ap_int<Shape::partial_bits> Partial;

  // One input vector, written while neuron fold 0 runs and read for the later folds. It has one
  // access per cycle, so a single-port memory is enough.
  typename Shape::InputWord input_buffer[Shape::synapse_folds];
  Accumulator accumulators[Config::pe];
#pragma HLS ARRAY_PARTITION variable=accumulators complete
  // Unscaled sums of the current kernel position (only used when kernel_positions > 1).
  Partial partials[Config::pe];
#pragma HLS ARRAY_PARTITION variable=partials complete

  unsigned neuron_fold = 0;
  unsigned synapse_fold = 0;
  unsigned tile = 0;
  unsigned position = 0;
  unsigned position_word = 0;

  const unsigned iterations = vectors * Shape::neuron_folds * Shape::synapse_folds;
  for (unsigned iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
    typename Shape::InputWord input;
    if (neuron_fold == 0) {
      input = in.read();
      input_buffer[synapse_fold] = input;
    } else {
      input = input_buffer[synapse_fold];
    }

    const bool vector_start = synapse_fold == 0;
    const bool position_end = position_word == Shape::words_per_position - 1;
    const ap_uint<Config::scale_bits> scale = position_scales[position];

    for (unsigned p = 0; p < Config::pe; p++) {
#pragma HLS UNROLL
      const typename Shape::WeightWord weight_word = weights[p][tile];
      ap_int<Shape::word_sum_bits> word_sum = word_dot_product<Config>(input, weight_word);
      Accumulator base = vector_start ? Accumulator(0) : accumulators[p];
      if (Config::kernel_positions == 1) {
        accumulators[p] = base + word_sum;
      } else {
        // A kernel position's columns are summed unscaled, then the sum is multiplied by that
        // position's scale once, in the cycle of its last word.
        Partial partial = (position_word == 0 ? Partial(0) : partials[p]) + word_sum;
        if (position_end) {
          accumulators[p] = base + scale * partial;
        } else {
          accumulators[p] = base;
          partials[p] = partial;
        }
      }
    }

    if (synapse_fold == Shape::synapse_folds - 1) {
      typename Shape::OutputWord output = 0;
      for (unsigned p = 0; p < Config::pe; p++) {
#pragma HLS UNROLL
        set_lane<Config::output_bits>(output, p, activate<Config>(thresholds, neuron_fold, p, accumulators[p]));
      }
      out.write(output);
    }

    // Advance the counters: kernel position within the vector, synapse fold, neuron fold, tile.
    if (position_end) {
      position_word = 0;
      position = position + 1 == Config::kernel_positions ? 0 : position + 1;
    } else {
      position_word++;
    }
    tile++;
    if (synapse_fold == Shape::synapse_folds - 1) {
      synapse_fold = 0;
      if (neuron_fold == Shape::neuron_folds - 1) {
        neuron_fold = 0;
        tile = 0;
      } else {
        neuron_fold++;
      }
    } else {
      synapse_fold++;
    }
  }
}

}  // namespace detail

/// MVAU with multi-threshold activation.
///
/// Output element of row r = output_offset + #{k : acc_r >= thresholds[r % pe][r / pe][k]}, written as
/// the low output_bits bits (bipolar output: one threshold, offset 0, the bit is the count).
///
/// \tparam Config         see MvauShape, with num_thresholds >= 1.
/// \tparam WeightStorage  element type of the weight memory (ap_uint<simd * weight_bits> or a wider
///                        native unsigned integer, which g++ compiles faster for large tables).
/// \param in                 vectors * synapse_folds words of simd input elements.
/// \param out                vectors * neuron_folds words of pe output elements.
/// \param weights            weights[r % pe][(r / pe) * synapse_folds + c / simd], lane c % simd. Each
///                           word has simd * weight_bits bits, as ap_uint or a native integer wide enough.
/// \param position_scales    unsigned scale of each kernel position (ignored when kernel_positions == 1).
/// \param thresholds         per row, compared in the (accumulator_bits + 1)-bit signed type. Ties count.
/// \param vectors            number of input vectors to process in this call.
template <typename Config, typename WeightStorage>
void mvau_threshold(
    hls::stream<ap_uint<Config::simd * Config::input_bits> >& in,
    hls::stream<ap_uint<Config::pe * Config::output_bits> >& out,
    const WeightStorage weights[Config::pe][MvauShape<Config>::tiles],
    const ap_uint<Config::scale_bits> position_scales[Config::kernel_positions],
    const ap_int<Config::accumulator_bits + 1> thresholds[Config::pe][MvauShape<Config>::neuron_folds]
                                                         [Config::num_thresholds],
    unsigned vectors) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=weights complete dim=1
#pragma HLS ARRAY_PARTITION variable=thresholds complete dim=1
#pragma HLS ARRAY_PARTITION variable=thresholds complete dim=3
  static_assert(Config::num_thresholds >= 1, "mvau_threshold needs num_thresholds >= 1 (use mvau_raw otherwise)");
  static_assert(Config::output_kind != kBipolar || (Config::num_thresholds == 1 && Config::output_offset == 0),
                "a bipolar MVAU output needs num_thresholds == 1 and output_offset == 0");
  static_assert(Config::output_kind != kBipolar || Config::output_bits == 1, "bipolar outputs are 1 bit wide");
  detail::mvau_loop<Config, typename MvauShape<Config>::ThresholdRows, WeightStorage>(in, out, weights, position_scales,
                                                                                     thresholds, vectors);
}

/// MVAU without activation: each output element is the signed accumulator
/// (output_bits == accumulator_bits, output_kind == kSigned). Parameters as in mvau_threshold.
template <typename Config, typename WeightStorage>
void mvau_raw(hls::stream<ap_uint<Config::simd * Config::input_bits> >& in,
              hls::stream<ap_uint<Config::pe * Config::output_bits> >& out,
              const WeightStorage weights[Config::pe][MvauShape<Config>::tiles],
              const ap_uint<Config::scale_bits> position_scales[Config::kernel_positions], unsigned vectors) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=weights complete dim=1
  static_assert(Config::output_bits == Config::accumulator_bits, "mvau_raw needs output_bits == accumulator_bits");
  static_assert(Config::output_kind == kSigned, "mvau_raw outputs signed accumulators (output_kind == kSigned)");
  detail::NoThresholds no_thresholds;
  detail::mvau_loop<Config, detail::NoThresholds, WeightStorage>(in, out, weights, position_scales, no_thresholds,
                                                                 vectors);
}

}  // namespace syq

#endif  // SYQ_MVAU_HPP
