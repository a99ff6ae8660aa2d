// TEMPORARY (until the emulated NCCL library lands): the NCCL communicator
// replaced by MPI on the host, synchronising the emulated device around every
// operation.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <vector>

#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"

namespace dt {
namespace {

class EmulatedNccl final : public Communicator {
 public:
  explicit EmulatedNccl(MPI_Comm group) : mpi_(group) {}
  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  void all_reduce_sum(Tensor t) override { reduce(t, false); }
  void all_reduce_max(Tensor t) override { reduce(t, true); }
  void reduce_scatter_sum(Tensor out, Tensor in) override { sync(); mpi_.reduce_scatter_sum(host(out), host(in)); }
  void all_gather(Tensor out, Tensor in) override { sync(); mpi_.all_gather(host(out), host(in)); }
  void broadcast(Tensor t, int root) override { sync(); mpi_.broadcast(words(t), root); }
  void send(Tensor t, int peer, int tag) override { sync(); mpi_.send(words(t), peer, tag); }
  void recv(Tensor t, int peer, int tag) override { sync(); mpi_.recv(words(t), peer, tag); }
  void wait_sends() override { mpi_.wait_sends(); }
  void barrier() override { mpi_.barrier(); }
  void reduce_async(Tensor out, Tensor in, int root) override {
    sync();
    mpi_.reduce_async(host(out), host(in), root);
    mpi_.finish_async();
  }
  void finish_async() override {}
  double all_reduce_sum(double v) override { return mpi_.all_reduce_sum(v); }
  double all_reduce_max(double v) override { return mpi_.all_reduce_max(v); }

 private:
  static void sync() { cudaDeviceSynchronize(); }
  static Tensor host(Tensor t) {
    t.device = Device::cpu();
    return t;
  }
  static Tensor words(const Tensor& t) {
    DT_CHECK(t.bytes() % 4 == 0, "emulated NCCL: odd-sized bf16 tensor ", t.shape_str());
    return Tensor(t.ptr, DType::F32, {int64_t(t.bytes() / 4)});
  }
  void reduce(Tensor t, bool max) {
    sync();
    if (t.dtype != DType::BF16) {
      max ? mpi_.all_reduce_max(host(t)) : mpi_.all_reduce_sum(host(t));
      return;
    }
    const int64_t n = t.numel();
    auto* p = static_cast<__nv_bfloat16*>(t.ptr);
    std::vector<float> f(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) f[size_t(i)] = __bfloat162float(p[i]);
    const Tensor ft(f.data(), DType::F32, {n});
    max ? mpi_.all_reduce_max(ft) : mpi_.all_reduce_sum(ft);
    for (int64_t i = 0; i < n; ++i) p[i] = __float2bfloat16(f[size_t(i)]);
  }
  MpiCommunicator mpi_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int) {
  return std::make_unique<EmulatedNccl>(group);
}

}  // namespace dt
