// Every rank of a job must run the same config: ranks started with different
// ones (mpirun's MPMD syntax, `A : B`) would lay out different buffers and
// corrupt each other's memory at the first collective.
#pragma once
#include <mpi.h>

#include "core/config.hpp"

namespace dt {

// Collective over comm, before anything is laid out: compares a hash of each
// rank's resolved config (config_to_yaml). On a mismatch the first rank whose
// config differs from rank 0's fails with one line naming the first key that
// differs and both values; the others wait for that failure to take the job
// down (MPI_Abort), so the job prints that one line.
void check_same_config(const Config& c, MPI_Comm comm);

}  // namespace dt
