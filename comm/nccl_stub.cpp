// Without CUDA there is no NCCL: a clear error at the first use.
#include <cstdlib>

#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"

namespace dt {

#ifndef DIFFTRON_HAVE_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int) {
  fail("this difftron was built without CUDA, so without NCCL; rebuild with nvcc available or use runtime.device: cpu");
}
#endif

int local_device_index(int visible_devices) {
  const char* vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK", "MPI_LOCALRANKID"};
  int local = 0;
  for (const char* v : vars)
    if (const char* s = std::getenv(v)) {
      local = std::atoi(s);
      break;
    }
  return visible_devices > 0 ? local % visible_devices : 0;
}

}  // namespace dt
