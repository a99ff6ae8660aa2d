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

void log_line(const std::string& s) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_world > 1) std::fprintf(stderr, "[rank %d] %s\n", g_rank, s.c_str());
  else std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

}  // namespace dt
