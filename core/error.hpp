// One error type for the whole project. Bad input (config, data, checkpoint,
// command line) throws dt::Error with a one-line message naming what is wrong
// and what was expected; the binary prints it and exits non-zero.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace dt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] inline void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace dt

// Internal invariant: a failure here is a bug in difftron, not in the input.
#define DT_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) ::dt::fail(__FILE__, ":", __LINE__, ": check failed: " #cond \
                            " ", ##__VA_ARGS__);                              \
  } while (0)
