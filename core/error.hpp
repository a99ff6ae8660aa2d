// One error type for the whole project. Bad input (config, data, checkpoint,
// command line) throws dt::Error with a one-line message naming what is wrong
// and what was expected; the binary prints it and exits non-zero.
// A failed DT_CHECK is a bug in difftron, not in the input: it throws
// dt::InternalError (still a dt::Error, so every handler of bad input also
// stops on it), which the binary prints as "internal error".
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace dt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A broken invariant inside difftron (DT_CHECK): what() names the file, line
// and condition, and says it is a bug to report.
struct InternalError : Error {
  using Error::Error;
};

template <typename... Args>
[[noreturn]] inline void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

template <typename... Args>
[[noreturn]] inline void fail_internal(const char* file, int line, const char* cond, const Args&... args) {
  std::ostringstream os;
  os << file << ":" << line << ": check failed: " << cond;
  if constexpr (sizeof...(args) > 0) {
    os << " ";
    (os << ... << args);
  }
  os << " (a bug in difftron, not in its input; please report it)";
  throw InternalError(os.str());
}

}  // namespace dt

// Internal invariant: a failure here is a bug in difftron, not in the input.
#define DT_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) ::dt::fail_internal(__FILE__, __LINE__, #cond, ##__VA_ARGS__); \
  } while (0)
