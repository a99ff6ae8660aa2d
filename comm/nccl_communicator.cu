// Communicator over NCCL for CUDA tensors (comm/communicator.hpp). Every
// operation runs on the communicator's own stream, fenced by events against
// the compute stream (kernels/cuda/cuda_common.cuh) on both sides:
//   enter(): the NCCL stream waits for the kernels already queued, so a
//            collective never reads its input before the kernel that writes it;
//   leave(): the compute stream waits for the operation, so no kernel reads a
//            received buffer early or overwrites one still being sent.
// Neither blocks the host. The asynchronous calls (start_exchange,
// reduce_async) enter at once and leave only in wait_exchange / finish_async,
// which is what lets them overlap the compute that follows.
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
      ::dt::fail(__FILE__, ":", __LINE__, ": NCCL error in " #call ": ", ncclGetErrorString(r_),     \
                 " (set NCCL_DEBUG=INFO for details; check NCCL_SOCKET_IFNAME / NCCL_IB_HCA)");      \
  } while (0)
namespace dt {

namespace {

using cuda_ops::cuda_stream;

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, int device) : device_(device) {
    MPI_Comm_rank(group, &rank_);
    MPI_Comm_size(group, &size_);
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group);
    MPI_Comm_free(&group);
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    scalar_ = static_cast<double*>(cuda_malloc_counted(sizeof(double)));
    for (cudaEvent_t* e : {&ready_, &done_, &exchanged_, &reduced_})
      CUDA_CHECK(cudaEventCreateWithFlags(e, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    for (cudaEvent_t e : {ready_, done_, exchanged_, reduced_}) cudaEventDestroy(e);
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
    enter();
    NCCL_CHECK(ncclReduceScatter(in.ptr, out.ptr, size_t(out.numel()), type(out), ncclSum, comm_, stream_));
    leave();
  }
  void all_gather(Tensor out, Tensor in) override {
    check(out, "all_gather");
    DT_CHECK(out.numel() == in.numel() * size_);
    if (!DT_MUTATION("no_wait_before_all_gather")) enter();
    NCCL_CHECK(ncclAllGather(in.ptr, out.ptr, size_t(in.numel()), type(in), comm_, stream_));
    leave();
  }
  void broadcast(Tensor t, int root) override {
    check(t, "broadcast");
    enter();
    NCCL_CHECK(ncclBroadcast(t.ptr, t.ptr, size_t(t.numel()), type(t), root, comm_, stream_));
    leave();
  }
  // NCCL has no gather: root receives from every other rank in one group
  // and copies its own part.
  void gather(Tensor out, Tensor in, int root) override {
    check(in, "gather");
    const size_t n = size_t(in.numel());
    enter();
    if (rank_ == root) {
      check(out, "gather");
      DT_CHECK(out.dtype == in.dtype && out.numel() == in.numel() * size_, "gather sizes");
      char* own = static_cast<char*>(out.ptr) + size_t(rank_) * in.bytes();
      if (own != in.ptr) CUDA_CHECK(cudaMemcpyAsync(own, in.ptr, in.bytes(), cudaMemcpyDeviceToDevice, stream_));
    }
    NCCL_CHECK(ncclGroupStart());
    if (rank_ != root) NCCL_CHECK(ncclSend(in.ptr, n, type(in), root, comm_, stream_));
    else
      for (int r = 0; r < size_; ++r)
        if (r != rank_)
          NCCL_CHECK(ncclRecv(static_cast<char*>(out.ptr) + size_t(r) * in.bytes(), n, type(in), r, comm_, stream_));
    NCCL_CHECK(ncclGroupEnd());
    leave();
  }

  void send(Tensor t, int peer, int) override {
    check(t, "send");
    sends_.push_back({t, peer, true});
  }
  void recv(Tensor t, int peer, int) override {
    check(t, "recv");
    sends_.push_back({t, peer, false});
    group(sends_);
    sends_.clear();
    leave();
  }
  void wait_sends() override {
    if (sends_.empty()) return;
    group(sends_);
    sends_.clear();
    leave();
  }

  void start_exchange(const std::vector<P2P>& ops) override {
    for (const P2P& op : ops) check(op.t, "start_exchange");
    group(ops);
    CUDA_CHECK(cudaEventRecord(exchanged_, stream_));
  }
  void wait_exchange() override { CUDA_CHECK(cudaStreamWaitEvent(cuda_stream(), exchanged_, 0)); }

  void barrier() override { all_reduce_sum(0.0); }

  // One group per call (a bucket's parts under ZeRO-1: one reduce per owner).
  using Communicator::reduce_async;
  void reduce_async(const std::vector<Reduction>& parts) override {
    enter();
    NCCL_CHECK(ncclGroupStart());
    for (const Reduction& p : parts) {
      check(p.in, "reduce_async");
      DT_CHECK(p.out.numel() == p.in.numel(), "reduce_async sizes");
      const size_t n = size_t(p.in.numel());
      if (p.root < 0) NCCL_CHECK(ncclAllReduce(p.in.ptr, p.out.ptr, n, type(p.in), ncclSum, comm_, stream_));
      else
        NCCL_CHECK(ncclReduce(p.in.ptr, rank_ == p.root ? p.out.ptr : p.in.ptr, n, type(p.in), ncclSum, p.root,
                              comm_, stream_));
    }
    NCCL_CHECK(ncclGroupEnd());
  }
  void finish_async() override {
    CUDA_CHECK(cudaEventRecord(reduced_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(cuda_stream(), reduced_, 0));
  }
  double all_reduce_sum(double v) override { return reduce_scalar(v, ncclSum); }
  double all_reduce_max(double v) override { return reduce_scalar(v, ncclMax); }

 private:
  static ncclDataType_t type(const Tensor& t) {
    switch (t.dtype) {
      case DType::F32: return ncclFloat32;
      case DType::BF16: return ncclBfloat16;
      case DType::I32: return ncclInt32;
      case DType::F64: return ncclFloat64;
    }
    return ncclFloat32;
  }
  void check(const Tensor& t, const char* op) const {
    if (t.device.is_cpu()) fail(op, ": the NCCL communicator needs device tensors (MPI handles host tensors)");
  }
  // The NCCL stream waits for the work queued on the compute stream so far.
  void enter() {
    CUDA_CHECK(cudaEventRecord(ready_, cuda_stream()));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
  }
  // The compute stream's later work waits for what the NCCL stream has queued.
  void leave() {
    CUDA_CHECK(cudaEventRecord(done_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(cuda_stream(), done_, 0));
  }
  // Sends and receives as one NCCL group, after the queued compute.
  void group(const std::vector<P2P>& ops) {
    enter();
    NCCL_CHECK(ncclGroupStart());
    for (const P2P& op : ops) {
      const size_t n = size_t(op.t.numel());
      if (op.send) NCCL_CHECK(ncclSend(op.t.ptr, n, type(op.t), op.peer, comm_, stream_));
      else NCCL_CHECK(ncclRecv(op.t.ptr, n, type(op.t), op.peer, comm_, stream_));
    }
    NCCL_CHECK(ncclGroupEnd());
  }
  void reduce(Tensor t, ncclRedOp_t op) {
    check(t, "all_reduce");
    if (!DT_MUTATION("no_wait_before_all_reduce")) enter();
    NCCL_CHECK(ncclAllReduce(t.ptr, t.ptr, size_t(t.numel()), type(t), op, comm_, stream_));
    leave();
  }
  // A host value: waits for the NCCL stream (not used inside a training step).
  double reduce_scalar(double v, ncclRedOp_t op) {
    enter();
    CUDA_CHECK(cudaMemcpyAsync(scalar_, &v, sizeof v, cudaMemcpyHostToDevice, stream_));
    NCCL_CHECK(ncclAllReduce(scalar_, scalar_, 1, ncclFloat64, op, comm_, stream_));
    CUDA_CHECK(cudaMemcpyAsync(&v, scalar_, sizeof v, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return v;
  }

  int rank_ = 0, size_ = 1, device_ = 0;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  double* scalar_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr, exchanged_ = nullptr, reduced_ = nullptr;
  std::vector<P2P> sends_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int device) {
  return std::make_unique<NcclCommunicator>(group, device);
}

}  // namespace dt
