// C-simulation helpers (not synthesizable): read and write files of packed stream words.
//
// File format, shared with generator/packing.py (write_words / read_words): each word of Bits bits is
// stored as ceil(Bits / 64) 64-bit limbs, least significant limb first, each limb little-endian.
// Bits above Bits in the last limb are zero when written and ignored when read.
// Bits is an int, the type of ap_uint's own parameter, so that it can be deduced from a stream or vector.
#ifndef SYQ_TESTBENCH_HPP
#define SYQ_TESTBENCH_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace syq {
namespace testbench {

/// Number of 64-bit limbs that store one word of Bits bits.
constexpr unsigned limbs_per_word(unsigned bits) { return (bits + 63) / 64; }

/// Reads a whole file of packed words. Throws std::runtime_error when the file is missing or its size
/// is not a multiple of the word size.
template <int Bits>
std::vector<ap_uint<Bits> > read_words(const std::string& path) {
  std::ifstream file(path.c_str(), std::ios::binary);
  if (!file) {
    throw std::runtime_error("cannot open word file " + path);
  }
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::size_t word_bytes = 8 * limbs_per_word(Bits);
  if (bytes.size() % word_bytes != 0) {
    throw std::runtime_error("word file " + path + " has " + std::to_string(bytes.size()) +
                             " bytes, not a multiple of " + std::to_string(word_bytes) + " (" +
                             std::to_string(Bits) + "-bit words)");
  }
  std::vector<ap_uint<Bits> > words(bytes.size() / word_bytes);
  for (std::size_t index = 0; index < words.size(); index++) {
    ap_uint<Bits> word = 0;
    for (unsigned limb = 0; limb < limbs_per_word(Bits); limb++) {
      std::uint64_t value = 0;
      for (unsigned byte = 0; byte < 8; byte++) {
        value |= static_cast<std::uint64_t>(bytes[index * word_bytes + limb * 8 + byte]) << (8 * byte);
      }
      word |= ap_uint<Bits>(value) << (64 * limb);  // truncates the unused bits of the last limb
    }
    words[index] = word;
  }
  return words;
}

/// Writes packed words to a file in the format of the file comment. Throws std::runtime_error on failure.
template <int Bits>
void write_words(const std::string& path, const std::vector<ap_uint<Bits> >& words) {
  std::ofstream file(path.c_str(), std::ios::binary);
  if (!file) {
    throw std::runtime_error("cannot create word file " + path);
  }
  for (std::size_t index = 0; index < words.size(); index++) {
    for (unsigned limb = 0; limb < limbs_per_word(Bits); limb++) {
      const std::uint64_t value = ap_uint<64>(words[index] >> (64 * limb)).to_uint64();
      char bytes[8];
      for (unsigned byte = 0; byte < 8; byte++) {
        bytes[byte] = static_cast<char>((value >> (8 * byte)) & 0xff);
      }
      file.write(bytes, 8);
    }
  }
  if (!file) {
    throw std::runtime_error("cannot write word file " + path);
  }
}

/// Pushes every word of a file into a stream and returns the number of words.
template <int Bits>
std::size_t read_stream(const std::string& path, hls::stream<ap_uint<Bits> >& stream) {
  const std::vector<ap_uint<Bits> > words = read_words<Bits>(path);
  for (std::size_t index = 0; index < words.size(); index++) {
    stream.write(words[index]);
  }
  return words.size();
}

/// Drains a stream into a file and returns the number of words written.
template <int Bits>
std::size_t write_stream(const std::string& path, hls::stream<ap_uint<Bits> >& stream) {
  std::vector<ap_uint<Bits> > words;
  while (!stream.empty()) {
    words.push_back(stream.read());
  }
  write_words<Bits>(path, words);
  return words.size();
}

}  // namespace testbench
}  // namespace syq

#endif  // SYQ_TESTBENCH_HPP
