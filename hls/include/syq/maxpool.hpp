// Streaming max pooling over square windows, without padding (output size rounds down).
//
// Input and output are NHWC frames with channel_folds = channels / pe words of pe elements per pixel.
// The unit reads one word per cycle and never stores the image. A window of output pixel (oy, ox)
// covers image rows oy * stride .. oy * stride + kernel - 1, and likewise columns. Overlapping windows
// (kernel > stride) share pixels, so up to overlap = ceil(kernel / stride) windows are open in each
// direction:
// - horizontal: `overlap` running maxima of the current image row per channel fold. A window's
//   horizontal maximum is complete at its last column.
// - vertical: `overlap` rows of running maxima over ofm_width * channel_folds words. A window is
//   complete at its last row, and its word is written in the same cycle.
//
// Cycles per frame: ifm_height * ifm_width * channel_folds at II=1, plus the pipeline depth.
#ifndef SYQ_MAXPOOL_HPP
#define SYQ_MAXPOOL_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"

namespace syq {

/// Constants derived from a max-pool Config, and the compile-time checks of its members.
/// \tparam Config  ifm_height, ifm_width, channels, kernel (window side), stride, pe (channels per word,
///   divides channels), element_bits, element_kind (bipolar elements pool as OR, 1 meaning +1).
template <typename Config>
struct MaxPoolShape {
  static_assert(Config::pe >= 1 && Config::channels % Config::pe == 0, "max pool pe must divide channels");
  static_assert(Config::kernel >= 1 && Config::stride >= 1, "max pool kernel and stride must be at least 1");
  static_assert(Config::ifm_height >= Config::kernel && Config::ifm_width >= Config::kernel,
                "max pool kernel is larger than the image");

  static const unsigned channel_folds = Config::channels / Config::pe;
  static const unsigned ofm_height = (Config::ifm_height - Config::kernel) / Config::stride + 1;
  static const unsigned ofm_width = (Config::ifm_width - Config::kernel) / Config::stride + 1;
  /// Windows that can be open at once in each direction.
  static const unsigned overlap = ceil_div(Config::kernel, Config::stride);
};

namespace detail {

/// Lane-wise maximum of two words. Unsigned and bipolar lanes compare as unsigned (for 1-bit bipolar
/// lanes that is the OR), signed lanes as two's complement.
template <typename Config>
inline ap_uint<Config::pe * Config::element_bits> max_word(const ap_uint<Config::pe * Config::element_bits>& a,
                                                           const ap_uint<Config::pe * Config::element_bits>& b) {
#pragma HLS INLINE
  ap_uint<Config::pe * Config::element_bits> result = 0;
  for (unsigned lane = 0; lane < Config::pe; lane++) {
#pragma HLS UNROLL
    const ap_uint<Config::element_bits> x = get_lane<Config::element_bits>(a, lane);
    const ap_uint<Config::element_bits> y = get_lane<Config::element_bits>(b, lane);
    bool x_larger;
    if (Config::element_kind == kSigned) {
      x_larger = ap_int<Config::element_bits>(x) > ap_int<Config::element_bits>(y);
    } else {
      x_larger = x > y;
    }
    set_lane<Config::element_bits>(result, lane, x_larger ? x : y);
  }
  return result;
}

// Window slots track where the current image row (or column) sits in the windows that cover it.
// Slot j serves output rows (columns) j, j + overlap, j + 2 * overlap, ... `offset[j]` is the position
// of the current row inside slot j's window (negative before that window starts) and `window[j]` is
// the window's output row.

/// Puts the slots at image row (column) 0.
template <typename Config>
inline void reset_slots(int offset[MaxPoolShape<Config>::overlap], unsigned window[MaxPoolShape<Config>::overlap]) {
#pragma HLS INLINE
  for (unsigned slot = 0; slot < MaxPoolShape<Config>::overlap; slot++) {
#pragma HLS UNROLL
    offset[slot] = -static_cast<int>(slot * Config::stride);
    window[slot] = slot;
  }
}

/// Moves the slots to the next image row (column). A slot whose window ended takes the window
/// `overlap` positions later.
template <typename Config>
inline void advance_slots(int offset[MaxPoolShape<Config>::overlap], unsigned window[MaxPoolShape<Config>::overlap]) {
#pragma HLS INLINE
  const unsigned overlap = MaxPoolShape<Config>::overlap;
  for (unsigned slot = 0; slot < overlap; slot++) {
#pragma HLS UNROLL
    if (offset[slot] == static_cast<int>(Config::kernel) - 1) {
      offset[slot] -= static_cast<int>(overlap * Config::stride) - 1;
      window[slot] += overlap;
    } else {
      offset[slot]++;
    }
  }
}

}  // namespace detail

/// Max pooling: see the file comment for formats and cycles.
/// \tparam Config  see MaxPoolShape.
/// \param frames   number of images to process.
template <typename Config>
void maxpool(hls::stream<ap_uint<Config::pe * Config::element_bits> >& in,
             hls::stream<ap_uint<Config::pe * Config::element_bits> >& out, unsigned frames) {
#pragma HLS INLINE off
  typedef MaxPoolShape<Config> Shape;
  typedef ap_uint<Config::pe * Config::element_bits> Word;
  const unsigned overlap = Shape::overlap;
  const int last_offset = static_cast<int>(Config::kernel) - 1;

  // Running maxima: per open horizontal window and channel fold, and per open row of windows,
  // output column and channel fold.
  Word row_maxima[Shape::overlap][Shape::channel_folds];
#pragma HLS ARRAY_PARTITION variable=row_maxima complete dim=1
  Word column_maxima[Shape::overlap][Shape::ofm_width * Shape::channel_folds];
#pragma HLS ARRAY_PARTITION variable=column_maxima complete dim=1

  int column_offset[Shape::overlap];
  unsigned column_window[Shape::overlap];
  int row_offset[Shape::overlap];
  unsigned row_window[Shape::overlap];
#pragma HLS ARRAY_PARTITION variable=column_offset complete
#pragma HLS ARRAY_PARTITION variable=column_window complete
#pragma HLS ARRAY_PARTITION variable=row_offset complete
#pragma HLS ARRAY_PARTITION variable=row_window complete
  detail::reset_slots<Config>(column_offset, column_window);
  detail::reset_slots<Config>(row_offset, row_window);
  unsigned image_column = 0;
  unsigned image_row = 0;
  unsigned channel_fold = 0;

  const unsigned iterations = frames * Config::ifm_height * Config::ifm_width * Shape::channel_folds;
  for (unsigned iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
    const Word pixel = in.read();

    // Horizontal: fold the word into every window covering this column. At most one window ends here.
    bool row_window_done = false;
    unsigned done_column = 0;
    Word row_maximum = pixel;
    for (unsigned slot = 0; slot < overlap; slot++) {
#pragma HLS UNROLL
      if (column_offset[slot] >= 0 && column_window[slot] < Shape::ofm_width) {
        const Word running =
            column_offset[slot] == 0 ? pixel : detail::max_word<Config>(row_maxima[slot][channel_fold], pixel);
        if (column_offset[slot] == last_offset) {
          row_window_done = true;
          done_column = column_window[slot];
          row_maximum = running;
        } else {
          row_maxima[slot][channel_fold] = running;
        }
      }
    }

    // Vertical: fold a finished horizontal maximum into every window covering this row, and write out
    // the window that ends on this row.
    if (row_window_done) {
      const unsigned address = done_column * Shape::channel_folds + channel_fold;
      for (unsigned slot = 0; slot < overlap; slot++) {
#pragma HLS UNROLL
        if (row_offset[slot] >= 0 && row_window[slot] < Shape::ofm_height) {
          const Word running = row_offset[slot] == 0
                                   ? row_maximum
                                   : detail::max_word<Config>(column_maxima[slot][address], row_maximum);
          if (row_offset[slot] == last_offset) {
            out.write(running);
          } else {
            column_maxima[slot][address] = running;
          }
        }
      }
    }

    // Advance channel fold, column and row. The slots move at pixel and row boundaries.
    if (channel_fold == Shape::channel_folds - 1) {
      channel_fold = 0;
      if (image_column == Config::ifm_width - 1) {
        image_column = 0;
        detail::reset_slots<Config>(column_offset, column_window);
        if (image_row == Config::ifm_height - 1) {
          image_row = 0;
          detail::reset_slots<Config>(row_offset, row_window);
        } else {
          image_row++;
          detail::advance_slots<Config>(row_offset, row_window);
        }
      } else {
        image_column++;
        detail::advance_slots<Config>(column_offset, column_window);
      }
    } else {
      channel_fold++;
    }
  }
}

}  // namespace syq

#endif  // SYQ_MAXPOOL_HPP
