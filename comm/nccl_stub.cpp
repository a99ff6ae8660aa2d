// Without CUDA there is no NCCL: a clear error at the first use.
#include "comm/nccl_communicator.hpp"
#include "comm/node_ranks.hpp"
#include "core/error.hpp"

namespace dt {

#ifndef DIFFTRON_HAVE_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int) {
  fail("this difftron was built without CUDA, so without NCCL; rebuild with nvcc available or use runtime.device: cpu");
}
#endif

int local_device_index(int visible_devices) {
  return visible_devices > 0 ? node_local_rank() % visible_devices : 0;
}

}  // namespace dt
