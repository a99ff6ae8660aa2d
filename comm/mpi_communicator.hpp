#pragma once
#include <mpi.h>

#include "comm/communicator.hpp"

namespace dt {

// Fails with the call, the file and line and MPI's own message.
#define MPI_CHECK(call)                                                                    \
  do {                                                                                     \
    int rc_ = (call);                                                                      \
    if (rc_ != MPI_SUCCESS) ::dt::mpi_fail(#call, __FILE__, __LINE__, rc_);               \
  } while (0)
[[noreturn]] void mpi_fail(const char* call, const char* file, int line, int rc);

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of comm (freed in the destructor unless it is MPI_COMM_WORLD).
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(Tensor t) override;
  void all_reduce_max(Tensor t) override;
  void reduce_scatter_sum(Tensor out, Tensor in) override;
  void all_gather(Tensor out, Tensor in) override;
  void broadcast(Tensor t, int root) override;
  void gather(Tensor out, Tensor in, int root) override;
  void send(Tensor t, int peer, int tag) override;
  void recv(Tensor t, int peer, int tag) override;
  void wait_sends() override;
  void barrier() override;
  void start_exchange(const std::vector<P2P>& ops) override;
  void wait_exchange() override;
  using Communicator::reduce_async;
  void reduce_async(const std::vector<Reduction>& parts) override;
  void finish_async() override;
  double all_reduce_sum(double v) override;
  double all_reduce_max(double v) override;
  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_, async_, exchange_;
};

// MPI_Init once per process (threads: funneled; only the main thread calls MPI).
void mpi_init_once(int* argc, char*** argv);
void mpi_finalize();
// World rank and size; 0 and 1 when MPI is not running.
int mpi_world_rank();
int mpi_world_size();
// Ends every rank of the job with this rank's message (MPI_Abort).
[[noreturn]] void mpi_abort_job(int code);

}  // namespace dt
