#include "comm/node_ranks.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

#include "core/error.hpp"

namespace dt {
namespace {

// A launcher variable as an integer >= min, or an error naming it.
int read_int(const char* var, const std::string& text, int min) {
  int v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < min)
    fail("environment variable ", var, "='", text, "': expected an integer >= ", min,
         " (set by the launcher: the ranks on this node)");
  return v;
}

const char* env(const char* var) { return std::getenv(var); }

// Slurm's per-node task counts, "4(x2),3" = 4, 4, 3: the entry of node `node`.
int slurm_tasks_on_node(const std::string& list, int node) {
  size_t at = 0;
  while (at < list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    const size_t paren = item.find("(x");
    const int count = read_int("SLURM_TASKS_PER_NODE", item.substr(0, paren), 1);
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')')
        fail("environment variable SLURM_TASKS_PER_NODE='", list, "': expected counts like 4(x2),3");
      repeat = read_int("SLURM_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3), 1);
    }
    if (node < repeat) return count;
    node -= repeat;
    at = comma + 1;
  }
  fail("environment variable SLURM_TASKS_PER_NODE='", list, "' has no entry for this node (SLURM_NODEID ",
       env("SLURM_NODEID") ? env("SLURM_NODEID") : "unset", ")");
}

}  // namespace

int node_local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID",
                          "LOCAL_RANK"})
    if (const char* v = env(var)) return read_int(var, v, 0);
  return 0;
}

int node_local_size() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE"})
    if (const char* v = env(var)) return read_int(var, v, 1);
  if (env("SLURM_LOCALID")) {
    if (const char* v = env("SLURM_NTASKS_PER_NODE")) return read_int("SLURM_NTASKS_PER_NODE", v, 1);
    if (const char* v = env("SLURM_TASKS_PER_NODE"))
      return slurm_tasks_on_node(v, env("SLURM_NODEID") ? read_int("SLURM_NODEID", env("SLURM_NODEID"), 0) : 0);
  }
  if (const char* v = env("LOCAL_WORLD_SIZE")) return read_int("LOCAL_WORLD_SIZE", v, 1);
  return 1;
}

int local_device_index(int visible_devices) {
  return visible_devices > 0 ? node_local_rank() % visible_devices : 0;
}

}  // namespace dt
