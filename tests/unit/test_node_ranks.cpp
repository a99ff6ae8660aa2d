// node_local_size() / node_local_rank() (comm/node_ranks.hpp): every
// launcher's variable is read, in the documented order, and a bad value is an
// error naming the variable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "comm/node_ranks.hpp"
#include "core/error.hpp"

namespace dt {
namespace {

const char* const kVars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALRANKID",
                             "MPI_LOCALNRANKS", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", "SLURM_LOCALID",
                             "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NODEID", "LOCAL_RANK",
                             "LOCAL_WORLD_SIZE"};

// Clears every launcher variable for the test and restores them after (ctest
// may run this binary under a launcher).
class NodeRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* s = std::getenv(v)) saved_[v] = s;
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
    for (const auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
  }
  static void set(const char* var, const char* value) { setenv(var, value, 1); }

 private:
  std::map<std::string, std::string> saved_;
};

TEST_F(NodeRanks, WithoutALauncherOneRankAtIndexZero) {
  EXPECT_EQ(node_local_size(), 1);
  EXPECT_EQ(node_local_rank(), 0);
}

TEST_F(NodeRanks, EachLauncherVariableIsRead) {
  const std::pair<const char*, const char*> launchers[] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                                           {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
                                                           {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"},
                                                           {"SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
                                                           {"LOCAL_RANK", "LOCAL_WORLD_SIZE"}};
  for (const auto& [rank, size] : launchers) {
    set(rank, "3");
    set(size, "6");
    EXPECT_EQ(node_local_rank(), 3) << rank;
    EXPECT_EQ(node_local_size(), 6) << size;
    unsetenv(rank);
    unsetenv(size);
  }
}

TEST_F(NodeRanks, SlurmTasksPerNodeIsThisNodesEntry) {
  set("SLURM_LOCALID", "0");
  set("SLURM_TASKS_PER_NODE", "4(x2),3");
  EXPECT_EQ(node_local_size(), 4);  // SLURM_NODEID unset: node 0
  set("SLURM_NODEID", "1");
  EXPECT_EQ(node_local_size(), 4);
  set("SLURM_NODEID", "2");
  EXPECT_EQ(node_local_size(), 3);
  set("SLURM_NODEID", "3");
  EXPECT_THROW(node_local_size(), Error);
}

// A batch script's single process sees the allocation's counts, not its own.
TEST_F(NodeRanks, SlurmCountsOutsideAnSrunTaskAreIgnored) {
  set("SLURM_TASKS_PER_NODE", "8");
  set("SLURM_NTASKS_PER_NODE", "8");
  EXPECT_EQ(node_local_size(), 1);
}

// mpirun inside a Slurm allocation: its own placement wins over the allocation's.
TEST_F(NodeRanks, AnMpiLauncherComesBeforeSlurmAndTorchrun) {
  set("SLURM_LOCALID", "0");
  set("SLURM_NTASKS_PER_NODE", "8");
  set("LOCAL_WORLD_SIZE", "16");
  set("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  EXPECT_EQ(node_local_size(), 2);
  EXPECT_EQ(node_local_rank(), 1);
}

TEST_F(NodeRanks, ABadValueNamesTheVariable) {
  set("MPI_LOCALNRANKS", "0");
  try {
    node_local_size();
    ADD_FAILURE() << "MPI_LOCALNRANKS=0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_LOCALNRANKS='0': expected an integer >= 1"), std::string::npos)
        << e.what();
  }
  set("MPI_LOCALNRANKS", "4x");
  EXPECT_THROW(node_local_size(), Error);
}

}  // namespace
}  // namespace dt
