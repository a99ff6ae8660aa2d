// The NCCL communicator on a single rank (MPI_COMM_SELF) against host
// reference values. Needs a GPU: reported as skipped, not passed, without one.
#include <gtest/gtest.h>

#include <vector>

#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "comm/node_ranks.hpp"
#include "core/arena.hpp"
#include "core/device.hpp"

namespace dt {
namespace {

TEST(NcclCommunicator, SingleRankCollectivesKeepValues) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA (no nvcc found)";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU visible (cudaGetDeviceCount failed or returned 0)";
  mpi_init_once(nullptr, nullptr);
  const Device gpu = Device::cuda(local_device_index(cuda_device_count()));
  auto comm = make_nccl_communicator(MPI_COMM_SELF, gpu.index);
  std::vector<float> host = {1.5f, -2.f, 3.25f, 7.f};
  Arena a(gpu);
  a.begin_measure();
  a.alloc_f32({4});
  a.alloc_f32({4});
  a.commit();
  Tensor x = a.alloc_f32({4}), y = a.alloc_f32({4});
  device_copy(x.ptr, gpu, host.data(), Device::cpu(), 16);
  comm->all_reduce_sum(x);
  comm->all_gather(y, x);
  std::vector<float> back(4);
  device_copy(back.data(), Device::cpu(), y.ptr, gpu, 16);
  EXPECT_EQ(back, host);
  std::vector<float> zeros(4, 0.f);
  device_copy(y.ptr, gpu, zeros.data(), Device::cpu(), 16);
  comm->gather(y, x, 0);  // one rank: its own part, copied
  device_copy(back.data(), Device::cpu(), y.ptr, gpu, 16);
  EXPECT_EQ(back, host);
  EXPECT_DOUBLE_EQ(comm->all_reduce_sum(2.5), 2.5);
  EXPECT_EQ(local_device_index(4) < 4, true);
}

}  // namespace
}  // namespace dt
