// Sliding-window generator (im2col as a stream) for convolutions, with stride and padding.
//
// Input: per frame, the image in NHWC order (rows top to bottom, pixels left to right, channels
// fastest), channel_folds = channels / simd words of simd elements per pixel.
// Output: for every output pixel (oy, ox) in row-major order, its window in (ky, kx, channel) order,
// i.e. matrix column (ky * kernel_width + kx) * channels + c, as words of simd elements. Positions
// outside the image produce pad_value in every lane.
//
// Structure: a line buffer of kernel_height + stride image rows (row_words = ifm_width * channel_folds
// words each, one memory per row). The frame is processed in phases. A prefill phase reads the rows
// that output row 0 needs. Then, for each output row oy, the phase emits that row's windows while it
// reads the rows that output row oy + 1 needs (at most `stride` new rows, which overwrite only rows
// that no window of row oy uses). The last phase also reads the image rows below the last window.
// Every cycle reads at most one word and writes at most one word.
//
// Cycles per frame (SlidingWindowShape::cycles_per_frame): prefill_rows * row_words
//   + sum over oy of max(ofm_width * kernel_height * kernel_width * channel_folds, new_rows(oy) * row_words),
// at II=1. Frames do not overlap: the next frame's prefill starts after the last window.
#ifndef SYQ_SLIDING_WINDOW_HPP
#define SYQ_SLIDING_WINDOW_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include "syq/elements.hpp"

namespace syq {

/// Constants derived from a sliding-window Config, and the compile-time checks of its members.
/// \tparam Config  ifm_height, ifm_width, channels, kernel_height, kernel_width, stride, padding
///   (pixels added on each of the four sides), simd (channels per word, divides channels),
///   element_bits, pad_value (raw element bits written at padded positions).
template <typename Config>
struct SlidingWindowShape {
  static_assert(Config::simd >= 1 && Config::channels % Config::simd == 0, "sliding window simd must divide channels");
  static_assert(Config::stride >= 1, "sliding window stride must be at least 1");
  static_assert(Config::kernel_height >= 1 && Config::kernel_width >= 1, "sliding window kernel must be at least 1x1");
  static_assert(Config::ifm_height + 2 * Config::padding >= Config::kernel_height &&
                    Config::ifm_width + 2 * Config::padding >= Config::kernel_width,
                "sliding window kernel is larger than the padded image");

  static const unsigned channel_folds = Config::channels / Config::simd;
  static const unsigned ofm_height =
      (Config::ifm_height + 2 * Config::padding - Config::kernel_height) / Config::stride + 1;
  static const unsigned ofm_width = (Config::ifm_width + 2 * Config::padding - Config::kernel_width) / Config::stride + 1;
  /// Words of one image row.
  static const unsigned row_words = Config::ifm_width * channel_folds;
  /// Words of one window (one output pixel).
  static const unsigned window_words = Config::kernel_height * Config::kernel_width * channel_folds;
  /// Words emitted per output row.
  static const unsigned output_row_words = ofm_width * window_words;
  /// Rows kept in the line buffer.
  static const unsigned buffer_rows = Config::kernel_height + Config::stride;

  /// Number of image rows that must have been read before output row `output_row` can be emitted.
  static constexpr unsigned rows_needed(unsigned output_row) {
    return output_row * Config::stride + Config::kernel_height <= Config::padding
               ? 0
               : (output_row * Config::stride + Config::kernel_height - Config::padding >= Config::ifm_height
                      ? Config::ifm_height
                      : output_row * Config::stride + Config::kernel_height - Config::padding);
  }

  /// Number of image rows read by the end of the phase of output row `output_row`.
  static constexpr unsigned rows_read_after(unsigned output_row) {
    return output_row + 1 < ofm_height ? rows_needed(output_row + 1) : Config::ifm_height;
  }

  /// Cycles per frame of sliding_window (see the file comment).
  static constexpr unsigned long long cycles_per_frame() {
    unsigned long long cycles = static_cast<unsigned long long>(rows_needed(0)) * row_words;
    unsigned rows_before = rows_needed(0);
    for (unsigned output_row = 0; output_row < ofm_height; output_row++) {
      const unsigned long long reads =
          static_cast<unsigned long long>(rows_read_after(output_row) - rows_before) * row_words;
      cycles += reads > output_row_words ? reads : output_row_words;
      rows_before = rows_read_after(output_row);
    }
    return cycles;
  }
};

/// Sliding-window generator: see the file comment for the stream formats and the cycle count.
/// \tparam Config  see SlidingWindowShape.
/// \param frames   number of images to process.
template <typename Config>
void sliding_window(hls::stream<ap_uint<Config::simd * Config::element_bits> >& in,
                    hls::stream<ap_uint<Config::simd * Config::element_bits> >& out, unsigned frames) {
#pragma HLS INLINE off
  typedef SlidingWindowShape<Config> Shape;
  typedef ap_uint<Config::simd * Config::element_bits> Word;
  const int padding = Config::padding;
  const int stride = Config::stride;
  const int ifm_height = Config::ifm_height;
  const int ifm_width = Config::ifm_width;
  const unsigned buffer_rows = Shape::buffer_rows;
  // Slot of image row -padding (the top padded row) in the circular line buffer.
  const unsigned first_top_slot = (buffer_rows - Config::padding % buffer_rows) % buffer_rows;

  Word line_buffer[Shape::buffer_rows][Shape::row_words];
#pragma HLS ARRAY_PARTITION variable=line_buffer complete dim=1
  const Word pad_word = replicate_element<Config::simd, Config::element_bits>(ap_uint<Config::element_bits>(
      Config::pad_value));

  // Reader state: image rows read so far in this frame, word within the row, slot receiving the row.
  unsigned rows_read = 0;
  unsigned read_word = 0;
  unsigned write_slot = 0;
  // Phase state: output_row == -1 is the prefill phase, and read_target is the row count to reach.
  int output_row = Shape::rows_needed(0) > 0 ? -1 : 0;
  unsigned read_target = Shape::rows_needed(0) > 0 ? Shape::rows_needed(0) : Shape::rows_read_after(0);
  // Emitter state: top image row and left image column of the current window (may be negative
  // inside the padding), slot of the top row, and position inside the window.
  int top_row = -padding;
  unsigned top_slot = first_top_slot;
  int left_column = -padding;
  unsigned output_column = 0;
  unsigned kernel_row = 0;
  unsigned kernel_column = 0;
  unsigned channel_fold = 0;
  bool row_emitted = false;

  const unsigned long long iterations = frames * Shape::cycles_per_frame();
  for (unsigned long long iteration = 0; iteration < iterations; iteration++) {
#pragma HLS PIPELINE II=1
    if (rows_read < read_target) {
      line_buffer[write_slot][read_word] = in.read();
      if (read_word == Shape::row_words - 1) {
        read_word = 0;
        rows_read++;
        write_slot = write_slot == buffer_rows - 1 ? 0 : write_slot + 1;
      } else {
        read_word++;
      }
    }

    if (output_row >= 0 && !row_emitted) {
      const int image_row = top_row + static_cast<int>(kernel_row);
      const int image_column = left_column + static_cast<int>(kernel_column);
      Word word = pad_word;
      if (image_row >= 0 && image_row < ifm_height && image_column >= 0 && image_column < ifm_width) {
        const unsigned slot = top_slot + kernel_row >= buffer_rows ? top_slot + kernel_row - buffer_rows
                                                                   : top_slot + kernel_row;
        word = line_buffer[slot][static_cast<unsigned>(image_column) * Shape::channel_folds + channel_fold];
      }
      out.write(word);

      // Advance through (ox, ky, kx, channel fold), channel folds fastest.
      if (channel_fold == Shape::channel_folds - 1) {
        channel_fold = 0;
        if (kernel_column == Config::kernel_width - 1) {
          kernel_column = 0;
          if (kernel_row == Config::kernel_height - 1) {
            kernel_row = 0;
            left_column += stride;
            if (output_column == Shape::ofm_width - 1) {
              output_column = 0;
              row_emitted = true;
            } else {
              output_column++;
            }
          } else {
            kernel_row++;
          }
        } else {
          kernel_column++;
        }
      } else {
        channel_fold++;
      }
    }

    // Start the next phase once this one has read its rows and emitted its windows.
    if (rows_read == read_target && (output_row < 0 || row_emitted)) {
      if (output_row == static_cast<int>(Shape::ofm_height) - 1) {
        // End of the frame: reset for the next one.
        rows_read = 0;
        write_slot = 0;
        output_row = Shape::rows_needed(0) > 0 ? -1 : 0;
        read_target = Shape::rows_needed(0) > 0 ? Shape::rows_needed(0) : Shape::rows_read_after(0);
        top_row = -padding;
        top_slot = first_top_slot;
      } else {
        if (output_row >= 0) {
          top_row += stride;
          top_slot = top_slot + Config::stride >= buffer_rows ? top_slot + Config::stride - buffer_rows
                                                              : top_slot + Config::stride;
        }
        output_row++;
        read_target = Shape::rows_read_after(static_cast<unsigned>(output_row));
      }
      left_column = -padding;
      row_emitted = false;
    }
  }
}

}  // namespace syq

#endif  // SYQ_SLIDING_WINDOW_HPP
