// Shared by the CUDA kernels: error checking, the compute stream, launch
// checks and dtype-generic element access.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.hpp"
#include "core/emulation_hooks.hpp"
#include "core/tensor.hpp"

// A failed CUDA call names itself and CUDA's reason ("CUDA error in
// cudaMalloc(&p, bytes): out of memory"). Only finding no GPU at all asks
// whether one is visible (the Trainer, from cuda_device_count()): a failure
// here happens with a GPU in hand, so that hint would mislead.
#define CUDA_CHECK(call) ::dt::cuda_check((call), #call, __FILE__, __LINE__)
namespace dt {
inline void cuda_check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) fail(file, ":", line, ": CUDA error in ", call, ": ", cudaGetErrorString(err));
}
}  // namespace dt

// After every kernel launch: a bad configuration is reported at its launch
// site, naming the kernel (a string literal).
#define CUDA_LAUNCH_CHECK_OF(kernel) ::dt::cuda_check(cudaGetLastError(), "the launch of " kernel, __FILE__, __LINE__)

// Every launch and every dynamic shared memory declaration goes through these,
// so the same sources also build for the host emulation of the tests
// (tests/cuda_emulation, DIFFTRON_CUDA_EMULATION). A templated kernel is named
// in parentheses: DT_LAUNCH((forward_kernel<D, MAPS>), grid, block, smem, args...).
#ifdef DIFFTRON_CUDA_EMULATION
#include "cuda_emulation.hpp"
#define DT_LAUNCH(kernel, grid, block, smem_bytes, ...)                                \
  do {                                                                                 \
    ::emu::launch(#kernel, ::dt::cuda_ops::cuda_stream(), kernel, grid, block, smem_bytes, __VA_ARGS__); \
    CUDA_LAUNCH_CHECK_OF(#kernel);                                                     \
  } while (0)
#define DT_DYNAMIC_SMEM(type, name) type* name = ::emu::dynamic_smem<type>()
#else
#define DT_LAUNCH(kernel, grid, block, smem_bytes, ...)                                \
  do {                                                                                 \
    kernel<<<grid, block, smem_bytes, ::dt::cuda_ops::cuda_stream()>>>(__VA_ARGS__);   \
    CUDA_LAUNCH_CHECK_OF(#kernel);                                                     \
  } while (0)
#define DT_DYNAMIC_SMEM(type, name) extern __shared__ __align__(128) type name[]
#endif

namespace dt {
// Every cudaMalloc of difftron goes through here (core/device_cuda.cu), so a
// test can check that a training step allocates nothing after the first.
void* cuda_malloc_counted(size_t bytes);
}  // namespace dt

namespace dt::cuda_ops {

// Every kernel runs on the legacy default stream, so host↔device cudaMemcpy
// (core/device_cuda.cu) is ordered with the kernels without extra events; the
// NCCL communicator's own stream waits on events recorded here.
inline cudaStream_t cuda_stream() { return 0; }

inline int64_t blocks_for(int64_t n, int threads) { return (n + threads - 1) / threads; }

// A float tensor as a kernel sees it: a pointer and whether it holds bf16.
// The dtype branch is uniform across a launch, so it costs nothing measurable
// in memory-bound kernels.
struct FBuf {
  void* p;
  bool bf16;
  __device__ __forceinline__ float ld(int64_t i) const {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]) : static_cast<const float*>(p)[i];
  }
  __device__ __forceinline__ void st(int64_t i, float x) const {
    if (bf16) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(x);
    else static_cast<float*>(p)[i] = x;
  }
};

// Checks the tensor is a float tensor on a CUDA device and wraps it.
inline FBuf fbuf(const Tensor& t, const char* op) {
  if (t.device.is_cpu()) fail(op, ": tensor ", t.shape_str(), " is on the cpu; every tensor of a CUDA op must be on the GPU");
  if (t.dtype == DType::I32) fail(op, ": expected an f32 or bf16 tensor, got i32 ", t.shape_str());
  return {t.ptr, t.dtype == DType::BF16};
}

inline void require_dtype(const Tensor& t, DType want, const char* op, const char* what) {
  if (t.device.is_cpu()) fail(op, ": ", what, " is on the cpu; every tensor of a CUDA op must be on the GPU");
  if (t.dtype != want) fail(op, ": ", what, " must be ", dtype_name(want), " on CUDA, got ", dtype_name(t.dtype));
}

}  // namespace dt::cuda_ops
