// make_nccl_communicator in a build without CUDA, so without NCCL: a clear
// error at the first use (comm/nccl_communicator.cu is the real one).
#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"

namespace dt {

#ifndef DIFFTRON_HAVE_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int) {
  fail("this difftron was built without CUDA, so without NCCL; rebuild with nvcc available or use runtime.device: cpu");
}
#endif

}  // namespace dt
