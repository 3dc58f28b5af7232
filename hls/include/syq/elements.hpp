// Element encodings shared by every syq kernel: element kinds, lane access in packed stream
// words, decoding of raw bits to signed values, and compile-time width helpers.
//
// A stream word of N elements of B bits is an ap_uint<N * B>. Element (lane) i occupies bits
// [i * B, (i + 1) * B), so lane 0 is at the LSB. generator/packing.py implements the same format
// on the host side.
#ifndef SYQ_ELEMENTS_HPP
#define SYQ_ELEMENTS_HPP

#include <ap_int.h>

namespace syq {

/// Interpretation of the raw bits of one element. The numeric values are part of the generated
/// code and of generator/packing.py (ElementKind), so they must not change.
enum ElementKind {
  kUnsigned = 0,  ///< ap_uint<B>: the value is the raw bits.
  kSigned = 1,    ///< ap_int<B>: two's complement.
  kBipolar = 2,   ///< 1 bit: raw 1 is +1 and raw 0 is -1.
};

/// Number of bits needed to count from 0 to n - 1, i.e. ceil(log2(n)), at compile time (0 for n <= 1).
constexpr unsigned ceil_log2(unsigned long long n) { return n <= 1 ? 0 : 1 + ceil_log2((n + 1) / 2); }

/// Larger of two compile-time constants. std::max takes references, which would ODR-use the static
/// const members of a Config that has no out-of-class definitions.
constexpr unsigned max_constant(unsigned a, unsigned b) { return a > b ? a : b; }

/// Ceiling of a / b for compile-time constants.
constexpr unsigned ceil_div(unsigned a, unsigned b) { return (a + b - 1) / b; }

/// Signed representation of the decoded value of a `Bits`-bit element of kind `Kind`.
/// \tparam Kind  kUnsigned, kSigned or kBipolar.
/// \tparam Bits  width of the raw element in bits (1 for kBipolar).
template <int Kind, unsigned Bits>
struct ElementValue {
  static_assert(Kind == kUnsigned || Kind == kSigned || Kind == kBipolar,
                "element kind must be syq::kUnsigned, syq::kSigned or syq::kBipolar");
  static_assert(Kind != kBipolar || Bits == 1, "bipolar elements are 1 bit wide");
  static_assert(Bits >= 1, "elements are at least 1 bit wide");

  /// Width of the signed value: an unsigned element gains a zero sign bit, a bipolar one needs 2 bits for +-1.
  static const unsigned bits = Kind == kUnsigned ? Bits + 1 : (Kind == kSigned ? Bits : 2);
  typedef ap_int<bits> type;
};

/// Decodes the raw bits of one element into its signed value (bipolar: 1 -> +1, 0 -> -1).
template <int Kind, unsigned Bits>
inline typename ElementValue<Kind, Bits>::type decode_element(const ap_uint<Bits>& raw) {
#pragma HLS INLINE
  typedef typename ElementValue<Kind, Bits>::type Value;
  if (Kind == kBipolar) {
    return raw[0] ? Value(1) : Value(-1);
  }
  if (Kind == kSigned) {
    return Value(ap_int<Bits>(raw));
  }
  return Value(raw);
}

/// Encodes a signed value as the raw bits of an element: the low `Bits` bits of its two's complement,
/// or for kBipolar 1 when the value is positive and 0 otherwise. Values out of range wrap.
template <int Kind, unsigned Bits, int ValueBits>
inline ap_uint<Bits> encode_element(const ap_int<ValueBits>& value) {
#pragma HLS INLINE
  if (Kind == kBipolar) {
    return ap_uint<Bits>(value > 0 ? 1 : 0);
  }
  return ap_uint<Bits>(value);
}

// Lane access uses shifts rather than range(hi, lo) with a run-time index: after unrolling the lane
// is a constant either way, but g++ -O2 warns (-Waggressive-loop-optimizations) inside ap_private's
// range code when it cannot prove hi >= lo.

/// Returns lane `lane` (`Bits` wide) of a packed word.
template <unsigned Bits, int WordBits>
inline ap_uint<Bits> get_lane(const ap_uint<WordBits>& word, unsigned lane) {
#pragma HLS INLINE
  return ap_uint<Bits>(word >> (lane * Bits));
}

/// Overwrites lane `lane` (`Bits` wide) of a packed word.
template <unsigned Bits, int WordBits>
inline void set_lane(ap_uint<WordBits>& word, unsigned lane, const ap_uint<Bits>& value) {
#pragma HLS INLINE
  const ap_uint<WordBits> lane_mask = ap_uint<WordBits>(~ap_uint<Bits>(0)) << (lane * Bits);
  word = (word & ~lane_mask) | (ap_uint<WordBits>(value) << (lane * Bits));
}

/// Returns a `Width`-bit mask whose low `ones` bits are set (0 <= ones <= Width).
template <unsigned Width>
inline ap_uint<Width> low_mask(unsigned ones) {
#pragma HLS INLINE
  ap_uint<Width + 1> one = 1;
  return ap_uint<Width>((one << ones) - 1);
}

/// Replicates one raw element into every lane of a word (used for padding words).
template <unsigned Lanes, unsigned Bits>
inline ap_uint<Lanes * Bits> replicate_element(const ap_uint<Bits>& element) {
#pragma HLS INLINE
  ap_uint<Lanes * Bits> word = 0;
  for (unsigned lane = 0; lane < Lanes; lane++) {
#pragma HLS UNROLL
    set_lane<Bits>(word, lane, element);
  }
  return word;
}

}  // namespace syq

#endif  // SYQ_ELEMENTS_HPP
