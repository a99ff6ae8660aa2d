#include "comm/config_agreement.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "comm/mpi_communicator.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"

namespace dt {
namespace {

// config_to_yaml's lines as (key path, value): "model:" then "  d_model: 128"
// gives ("model.d_model", "128"); each "    - {path: ...}" under a list key is
// one item, "data.datasets[0]".
std::vector<std::pair<std::string, std::string>> keyed_lines(const std::string& yaml) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(yaml);
  std::string line, section, list;
  int item = 0;
  while (std::getline(in, line)) {
    const size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    const size_t colon = line.find(':');
    if (indent == 0) {
      section = line.substr(0, colon);
    } else if (line.compare(indent, 2, "- ") == 0) {
      out.emplace_back(section + "." + list + "[" + std::to_string(item++) + "]", line.substr(indent + 2));
    } else {
      list = line.substr(indent, colon - indent), item = 0;
      out.emplace_back(section + "." + list, colon + 2 <= line.size() ? line.substr(colon + 2) : "");
    }
  }
  return out;
}

// The first key, in rank 0's order, whose value differs, and both values ("(not set)" when absent).
void name_first_difference(const Config& c, const std::string& mine, const std::string& rank0, int rank) {
  const auto a = keyed_lines(rank0), b = keyed_lines(mine);
  auto value_in = [](const auto& lines, const std::string& key) -> std::string {
    for (const auto& [k, v] : lines)
      if (k == key) return v;
    return "(not set)";
  };
  for (const auto* lines : {&a, &b})
    for (const auto& kv : *lines) {
      const std::string& key = kv.first;
      const std::string here = value_in(b, key), there = value_in(a, key);
      if (here != there)
        fail(c.source, ": ", key, " is ", here, " on this rank (", rank, ") but ", there, " on rank 0; expected "
             "every rank to run the same config (the same file and --set options)");
    }
  fail(c.source, ": this rank's config (", rank, ") differs from rank 0's; expected every rank to run the same config");
}

}  // namespace

void check_same_config(const Config& c, MPI_Comm comm) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &size));
  if (size == 1) return;
  const std::string yaml = config_to_yaml(c);
  uint64_t lo = hash_name(yaml), hi = lo;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm));
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm));
  if (lo == hi) return;

  // Rank 0's config to every rank; the lowest rank that differs from it reports.
  uint64_t n = yaml.size();
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm));
  std::string rank0 = yaml;
  rank0.resize(n);
  MPI_CHECK(MPI_Bcast(rank0.data(), int(n), MPI_CHAR, 0, comm));
  int first = rank0 == yaml ? size : rank;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm));
  if (rank == first) name_first_difference(c, yaml, rank0, rank);
  MPI_CHECK(MPI_Barrier(comm));  // never completes: rank `first` has failed and brings the job down
  fail("config mismatch reported by rank ", first);
}

}  // namespace dt
