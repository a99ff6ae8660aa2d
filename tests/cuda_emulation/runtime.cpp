// The CUDA runtime API subset difftron calls, on the host: one device, device
// memory is host memory (256-byte aligned, filled with 0xFF like fresh device
// memory), every call is synchronous, and copies and memsets are checked to
// stay inside live allocations in the direction their kind names.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <vector>

#include <cuda_bf16.h>

#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"
#include "emulated_runtime.hpp"

namespace emu {
namespace {

std::map<const unsigned char*, size_t>& allocations() {
  static std::map<const unsigned char*, size_t> a;
  return a;
}
std::map<const void*, size_t>& smem_opt_in() {
  static std::map<const void*, size_t> m;
  return m;
}

cudaError_t last_error = cudaSuccess;
std::string last_message;
int current_device = 0;

cudaError_t fail(cudaError_t code, const std::string& message) {
  record_error(code, message);
  return code;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    default: return "Default";
  }
}

// A copy of n bytes of the given kind: device ends inside allocations, host ends outside.
cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, const char* fn) {
  if (n == 0 || kind == cudaMemcpyDefault) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (in_device_allocation(dst, n) != dst_dev || in_device_allocation(src, n) != src_dev)
    return fail(cudaErrorInvalidValue, std::string(fn) + " " + kind_name(kind) + " of " + std::to_string(n) +
                                           " bytes: the " +
                                           (in_device_allocation(dst, n) != dst_dev ? "destination" : "source") +
                                           (dst_dev || src_dev ? " is not where the kind says, or runs past its "
                                                                 "allocation"
                                                               : " is device memory"));
  return cudaSuccess;
}

}  // namespace

void record_error(cudaError_t code, const std::string& message) {
  last_error = code;
  last_message = message;
}

size_t opted_in_smem(const void* kernel) {
  auto it = smem_opt_in().find(kernel);
  return it == smem_opt_in().end() ? 0 : it->second;
}

bool in_device_allocation(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  auto& a = allocations();
  auto it = a.upper_bound(c);
  if (it == a.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

}  // namespace emu

using emu::fail;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0)
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): the emulation has one device");
  emu::current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = emu::current_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0)
    return fail(cudaErrorInvalidDevice,
                "cudaGetDeviceProperties(" + std::to_string(device) + "): the emulation has one device");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "difftron CUDA emulation");  // in no datasheet table
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** p, size_t n) {
  void* m = nullptr;  // exactly n bytes, so AddressSanitizer builds catch the first byte past the end
  if (posix_memalign(&m, 256, std::max<size_t>(n, 1)) != 0)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(n) + " bytes");
  std::memset(m, 0xFF, n);  // garbage, as fresh device memory holds
  emu::allocations()[static_cast<unsigned char*>(m)] = n;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto it = emu::allocations().find(static_cast<unsigned char*>(p));
  if (it == emu::allocations().end())
    return fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
  emu::allocations().erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (cudaError_t e = emu::check_copy(dst, src, n, kind, "cudaMemcpy")) return e;
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  if (cudaError_t e = emu::check_copy(dst, src, n, kind, "cudaMemcpyAsync")) return e;
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t n) {
  if (n && !emu::in_device_allocation(p, n))
    return fail(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(n) + " bytes outside a device allocation");
  std::memset(p, value, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) { return cudaMemset(p, value, n); }

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return fail(cudaErrorInvalidValue,
                "cudaFuncSetAttribute: only cudaFuncAttributeMaxDynamicSharedMemorySize is emulated");
  if (value < 0 || size_t(value) > emu::kMaxOptInSmem)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                           " bytes of dynamic shared memory exceed the sm_80 limit");
  emu::smem_opt_in()[kernel] = size_t(value);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return emu::last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  static std::string s;
  s = e == cudaSuccess ? "no error" : "emulated CUDA error " + std::to_string(int(e)) + ": " + emu::last_message;
  return s.c_str();
}

// Events time the host: every call has finished by the time it returns.
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new std::chrono::steady_clock::time_point());
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  *reinterpret_cast<std::chrono::steady_clock::time_point*>(e) = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  using TP = std::chrono::steady_clock::time_point;
  *ms = std::chrono::duration<float, std::milli>(*reinterpret_cast<TP*>(stop) - *reinterpret_cast<TP*>(start)).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<std::chrono::steady_clock::time_point*>(e);
  return cudaSuccess;
}

}  // extern "C"

// core/nccl_communicator.cu needs the real NCCL. In the emulation device
// memory is host memory, so the "NCCL" groups run MPI on the same buffers: the
// Trainer's CUDA path (grid, checkpoints, bucketed reduction, tp/pp/dp layouts
// under mpirun: tests/mpi/cuda_emulation_equivalence.cpp) runs end to end.
namespace dt {
namespace {

class EmulatedNccl final : public Communicator {
 public:
  explicit EmulatedNccl(MPI_Comm group) : mpi_(group) {}
  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  void all_reduce_sum(Tensor t) override { reduce(t, false); }
  void all_reduce_max(Tensor t) override { reduce(t, true); }
  void reduce_scatter_sum(Tensor out, Tensor in) override { mpi_.reduce_scatter_sum(host(out), host(in)); }
  void all_gather(Tensor out, Tensor in) override { mpi_.all_gather(host(out), host(in)); }
  void broadcast(Tensor t, int root) override { mpi_.broadcast(words(t), root); }
  void send(Tensor t, int peer, int tag) override { mpi_.send(words(t), peer, tag); }
  void recv(Tensor t, int peer, int tag) override { mpi_.recv(words(t), peer, tag); }
  void wait_sends() override { mpi_.wait_sends(); }
  void barrier() override { mpi_.barrier(); }
  void reduce_async(Tensor out, Tensor in, int root) override { mpi_.reduce_async(host(out), host(in), root); }
  void finish_async() override { mpi_.finish_async(); }
  double all_reduce_sum(double v) override { return mpi_.all_reduce_sum(v); }
  double all_reduce_max(double v) override { return mpi_.all_reduce_max(v); }

 private:
  static Tensor host(Tensor t) {
    t.device = Device::cpu();
    return t;
  }
  // Point-to-point and broadcast move bytes: any tensor as f32 words.
  static Tensor words(const Tensor& t) {
    DT_CHECK(t.bytes() % 4 == 0, "emulated NCCL: odd-sized bf16 tensor ", t.shape_str());
    return Tensor(t.ptr, DType::F32, {int64_t(t.bytes() / 4)});
  }
  // bf16 tensors (activations under tensor parallelism) are reduced in f32 and
  // rounded back once, as NCCL's bf16 reductions accumulate in higher precision.
  void reduce(Tensor t, bool max) {
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
