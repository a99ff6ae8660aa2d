// The one logger: lines to stderr, prefixed with the rank when there are several.
#pragma once
#include <cstdio>
#include <sstream>

namespace dt {

void set_log_rank(int rank, int world);
void log_line(const std::string& s);

template <typename... Args>
void log_info(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  log_line(os.str());
}

}  // namespace dt
