// Which ranks share this node, from the variables the launcher sets for each
// process: the local rank picks the GPU (comm/nccl_communicator.hpp) and the
// local size splits the cores and memory between the ranks (default_threads,
// trainer/trainer.hpp; check_run_fits_machine, trainer/machine_fit.hpp).
// Both are read from the first launcher, in this order, that set its variable:
//   1. OpenMPI mpirun         OMPI_COMM_WORLD_LOCAL_RANK  OMPI_COMM_WORLD_LOCAL_SIZE
//   2. MPICH / Intel MPI      MPI_LOCALRANKID             MPI_LOCALNRANKS
//   3. PMI launchers          PMI_LOCAL_RANK              PMI_LOCAL_SIZE
//   4. Slurm srun             SLURM_LOCALID               SLURM_NTASKS_PER_NODE, else this node's
//                                                         entry of SLURM_TASKS_PER_NODE ("4(x2),3")
//   5. torchrun-style         LOCAL_RANK                  LOCAL_WORLD_SIZE
// An MPI launcher comes before Slurm: mpirun inside a Slurm allocation places
// its own ranks, and the allocation's variables describe the job, not them.
// Slurm's task counts are read only in an srun task (SLURM_LOCALID set): a
// batch script's one process sees the allocation's counts too.
#pragma once

namespace dt {

// This process's index among the ranks on its node; 0 when no launcher says.
int node_local_rank();
// The number of ranks on this node; 1 when no launcher says. A value that is
// not a positive integer is an error naming the variable.
int node_local_size();

// The GPU this process should use: its local rank modulo the visible GPUs.
int local_device_index(int visible_devices);

}  // namespace dt
