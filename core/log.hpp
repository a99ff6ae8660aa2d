// The one logger. Progress and information go to stdout, so that a batch
// system's output file (Slurm's .out) shows the run as it goes; warnings go to
// stderr beside the errors. Lines carry the rank when there are several.
#pragma once
#include <cstdio>
#include <sstream>
#include <string>

namespace dt {

void set_log_rank(int rank, int world);
void log_line(const std::string& s);  // stdout
void warn_line(const std::string& s);  // stderr

template <typename... Args>
void log_info(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  log_line(os.str());
}

// Something the user should know that does not stop the run.
template <typename... Args>
void log_warn(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  warn_line(os.str());
}

}  // namespace dt
