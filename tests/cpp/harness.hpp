// Helpers of the C++ test programs under tests/cpp: load parameter arrays from word files written by
// generator/packing.py and check stream sizes. Errors throw std::runtime_error, which main() reports.
#ifndef SYQ_TESTS_HARNESS_HPP
#define SYQ_TESTS_HARNESS_HPP

#include <ap_int.h>
#include <hls_stream.h>

#include <cstddef>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "syq/testbench.hpp"

namespace harness {

/// Throws unless `actual == expected`. `description` names the checked quantity.
inline void expect_count(const std::string& description, std::size_t actual, std::size_t expected) {
  if (actual != expected) {
    throw std::runtime_error(description + ": expected " + std::to_string(expected) + ", got " +
                             std::to_string(actual));
  }
}

/// Reads exactly `count` words of Bits bits from `path`.
template <unsigned Bits>
std::vector<ap_uint<Bits> > load_words(const std::string& path, std::size_t count) {
  std::vector<ap_uint<Bits> > words = syq::testbench::read_words<Bits>(path);
  expect_count("words in " + path, words.size(), count);
  return words;
}

/// Fills a flat array of `count` entries of type T from a file of Bits-bit words (bit-exact copy, so
/// signed entries get the two's complement written by packing.py).
template <unsigned Bits, typename T>
void load_array(const std::string& path, T* array, std::size_t count) {
  const std::vector<ap_uint<Bits> > words = load_words<Bits>(path, count);
  for (std::size_t index = 0; index < count; index++) {
    array[index] = T(words[index]);
  }
}

/// Throws when a stream still contains words, i.e. the kernel read fewer words than it was given.
template <typename Word>
void expect_drained(const std::string& stream_name, hls::stream<Word>& stream) {
  expect_count(stream_name + " words left unread", stream.size(), 0);
}

/// Runs one test case, reports its error on stderr, and returns 1 on failure and 0 on success.
template <typename Function>
int run_case(const std::string& name, Function function) {
  try {
    function();
    return 0;
  } catch (const std::exception& error) {
    std::cerr << name << ": " << error.what() << std::endl;
    return 1;
  }
}

}  // namespace harness

#endif  // SYQ_TESTS_HARNESS_HPP
