// Communicator over NCCL for CUDA tensors. Collectives run on the
// communicator's own stream and are synchronised before returning, so callers
// see the same semantics as the MPI communicator; reduce_async/finish_async
// (the bucketed gradient reduction overlapped with the backward) do not block
// the host and order themselves against the compute stream with events.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <vector>

#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_common.cuh"

#define NCCL_CHECK(call)                                                                             \
  do {                                                                                               \
    ncclResult_t r_ = (call);                                                                        \
    if (r_ != ncclSuccess)                                                                           \
      ::dt::fail(__FILE__, ":", __LINE__, ": NCCL error: ", ncclGetErrorString(r_),                  \
                 " (set NCCL_DEBUG=INFO for details; check NCCL_SOCKET_IFNAME / NCCL_IB_HCA)");      \
  } while (0)
namespace dt {

namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, int device) : device_(device) {
    MPI_Comm_rank(group, &rank_);
    MPI_Comm_size(group, &size_);
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group);
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    scalar_ = static_cast<double*>(cuda_malloc_counted(sizeof(double)));
    CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    cudaEventDestroy(ready_);
    cudaEventDestroy(done_);
    cudaFree(scalar_);
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(Tensor t) override { reduce(t, ncclSum); }
  void all_reduce_max(Tensor t) override { reduce(t, ncclMax); }
  void reduce_scatter_sum(Tensor out, Tensor in) override {
    check(out, "reduce_scatter_sum");
    DT_CHECK(in.numel() == out.numel() * size_);
    NCCL_CHECK(ncclReduceScatter(in.ptr, out.ptr, size_t(out.numel()), type(out), ncclSum, comm_, stream_));
    sync();
  }
  void all_gather(Tensor out, Tensor in) override {
    check(out, "all_gather");
    DT_CHECK(out.numel() == in.numel() * size_);
    NCCL_CHECK(ncclAllGather(in.ptr, out.ptr, size_t(in.numel()), type(in), comm_, stream_));
    sync();
  }
  void broadcast(Tensor t, int root) override {
    check(t, "broadcast");
    NCCL_CHECK(ncclBroadcast(t.ptr, t.ptr, size_t(t.numel()), type(t), root, comm_, stream_));
    sync();
  }
  // Point-to-point: a send is queued in a group that the next recv or
  // wait_sends() launches, so a send/recv pair between neighbours cannot deadlock.
  void send(Tensor t, int peer, int) override {
    check(t, "send");
    sends_.push_back({t, peer});
  }
  void recv(Tensor t, int peer, int) override {
    check(t, "recv");
    NCCL_CHECK(ncclGroupStart());
    for (const auto& s : sends_) NCCL_CHECK(ncclSend(s.t.ptr, size_t(s.t.numel()), type(s.t), s.peer, comm_, stream_));
    NCCL_CHECK(ncclRecv(t.ptr, size_t(t.numel()), type(t), peer, comm_, stream_));
    NCCL_CHECK(ncclGroupEnd());
    sends_.clear();
    sync();
  }
  void wait_sends() override {
    if (sends_.empty()) return;
    NCCL_CHECK(ncclGroupStart());
    for (const auto& s : sends_) NCCL_CHECK(ncclSend(s.t.ptr, size_t(s.t.numel()), type(s.t), s.peer, comm_, stream_));
    NCCL_CHECK(ncclGroupEnd());
    sends_.clear();
    sync();
  }
  void barrier() override { all_reduce_sum(0.0); }

  // Overlapped reductions: the NCCL stream waits for the compute stream (the
  // legacy default stream, see kernels/cuda/cuda_common.cuh) at the moment of
  // the call, then reduces while the backward continues.
  void reduce_async(Tensor out, Tensor in, int root) override {
    check(in, "reduce_async");
    DT_CHECK(out.numel() == in.numel(), "reduce_async sizes");
    CUDA_CHECK(cudaEventRecord(ready_, 0));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    const size_t n = size_t(in.numel());
    if (root < 0) NCCL_CHECK(ncclAllReduce(in.ptr, out.ptr, n, type(in), ncclSum, comm_, stream_));
    else NCCL_CHECK(ncclReduce(in.ptr, rank_ == root ? out.ptr : in.ptr, n, type(in), ncclSum, root, comm_, stream_));
  }
  void finish_async() override {
    CUDA_CHECK(cudaEventRecord(done_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(0, done_, 0));
  }
  double all_reduce_sum(double v) override { return reduce_scalar(v, ncclSum); }
  double all_reduce_max(double v) override { return reduce_scalar(v, ncclMax); }

 private:
  struct Pending {
    Tensor t;
    int peer;
  };
  static ncclDataType_t type(const Tensor& t) {
    switch (t.dtype) {
      case DType::F32: return ncclFloat32;
      case DType::BF16: return ncclBfloat16;
      case DType::I32: return ncclInt32;
    }
    return ncclFloat32;
  }
  void check(const Tensor& t, const char* op) const {
    if (t.device.is_cpu()) fail(op, ": the NCCL communicator needs device tensors (MPI handles host tensors)");
  }
  void reduce(Tensor t, ncclRedOp_t op) {
    check(t, "all_reduce");
    NCCL_CHECK(ncclAllReduce(t.ptr, t.ptr, size_t(t.numel()), type(t), op, comm_, stream_));
    sync();
  }
  double reduce_scalar(double v, ncclRedOp_t op) {
    CUDA_CHECK(cudaMemcpyAsync(scalar_, &v, sizeof v, cudaMemcpyHostToDevice, stream_));
    NCCL_CHECK(ncclAllReduce(scalar_, scalar_, 1, ncclFloat64, op, comm_, stream_));
    CUDA_CHECK(cudaMemcpyAsync(&v, scalar_, sizeof v, cudaMemcpyDeviceToHost, stream_));
    sync();
    return v;
  }
  void sync() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  int rank_ = 0, size_ = 1, device_ = 0;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  double* scalar_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  std::vector<Pending> sends_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int device) {
  return std::make_unique<NcclCommunicator>(group, device);
}

}  // namespace dt
