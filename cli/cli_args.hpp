// Parsing of command-line option values, shared by the subcommands: a bad
// value is one line naming the option, the text and what was expected.
#pragma once
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "core/error.hpp"

namespace dt {

// The whole of `text` as a T in [min, max] (finite for floating point).
template <typename T>
T parse_option(const std::string& opt, const std::string& text, T min, T max, const std::string& expected) {
  T v{};
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  bool ok = r.ec == std::errc() && r.ptr == text.data() + text.size() && v >= min && v <= max;
  if constexpr (std::is_floating_point_v<T>) ok = ok && std::isfinite(v);
  if (!ok) fail(opt, " ", text, ": expected ", expected);
  return v;
}

// The value that follows option argv[i] (i moves onto it), or a one-line error
// naming the option and what it needs.
inline std::string option_value(int argc, char** argv, int& i, const char* what) {
  if (i + 1 >= argc) fail(argv[i], " needs ", what);
  return argv[++i];
}

// Every integer option goes through here: the whole text, read into T (never
// wrapped: "--top-k 4294967297" is out of range, not 1), within [min, max].
template <typename T>
T parse_int_option(const std::string& opt, const std::string& text, T min, T max) {
  static_assert(std::is_integral_v<T>);
  return parse_option<T>(opt, text, min, max,
                         "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

}  // namespace dt
