// The Communicator over NCCL, for tensors on CUDA devices (DESIGN §4): the
// NCCL unique id is broadcast over the MPI group, and each rank uses the GPU
// of its local rank on the node. Built only when CUDA is found
// (DIFFTRON_HAVE_CUDA); make_nccl_communicator fails clearly otherwise.
#pragma once
#include <mpi.h>

#include <memory>

#include "comm/communicator.hpp"

namespace dt {

// A communicator over the same ranks as `group`, for device tensors on `device`.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int device);

}  // namespace dt
