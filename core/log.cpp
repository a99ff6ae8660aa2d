#include "core/log.hpp"

#include <mutex>
#include <string>

namespace dt {

static int g_rank = 0, g_world = 1;
static std::mutex g_mu;

void set_log_rank(int rank, int world) {
  g_rank = rank;
  g_world = world;
}

// Flushed per line: a log file read during the run (tail -f, a Slurm .out)
// is complete up to the last line, and ranks' lines do not interleave mid-line.
static void write_line(std::FILE* to, const std::string& s) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_world > 1) std::fprintf(to, "[rank %d] %s\n", g_rank, s.c_str());
  else std::fprintf(to, "%s\n", s.c_str());
  std::fflush(to);
}

void log_line(const std::string& s) { write_line(stdout, s); }

void warn_line(const std::string& s) { write_line(stderr, s); }

}  // namespace dt
