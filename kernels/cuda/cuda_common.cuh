// Shared by the CUDA kernels: error checking, the compute stream, launch
// checks and dtype-generic element access.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

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

// One 16-byte load or store; p must be 16-byte aligned (a GPU faults
// otherwise). Under the emulation the helper checks the access itself (bounds,
// races, alignment: emu::vector_access) and makes it with memcpy: g++ would
// split a uint4 copy into 4-byte accesses, whose alignment check passes a
// 4-aligned address, and an aligned SSE move would crash the test process
// where the GPU faults the kernel.
__device__ __forceinline__ uint4 ld16(const void* p) {
#ifdef DIFFTRON_CUDA_EMULATION
  ::emu::vector_access(p, 16, false);
  uint4 u;
  __builtin_memcpy(&u, p, 16);
  return u;
#else
  return *static_cast<const uint4*>(p);
#endif
}
__device__ __forceinline__ void st16(void* p, uint4 u) {
#ifdef DIFFTRON_CUDA_EMULATION
  ::emu::vector_access(p, 16, true);
  __builtin_memcpy(p, &u, 16);
#else
  *static_cast<uint4*>(p) = u;
#endif
}
__device__ __forceinline__ float4 ld16f(const float* p) {
#ifdef DIFFTRON_CUDA_EMULATION
  ::emu::vector_access(p, 16, false);
  float4 f;
  __builtin_memcpy(&f, p, 16);
  return f;
#else
  return *reinterpret_cast<const float4*>(p);
#endif
}
__device__ __forceinline__ void st16f(float* p, float4 f) {
#ifdef DIFFTRON_CUDA_EMULATION
  ::emu::vector_access(p, 16, true);
  __builtin_memcpy(p, &f, 16);
#else
  *reinterpret_cast<float4*>(p) = f;
#endif
}

// Elements per vector step of the elementwise kernels: 16 bytes of bf16, or
// 32 bytes (two 16-byte accesses) of f32. The kernels split their rows (or the
// whole tensor) into steps of kVec elements whatever the alignment; the
// alignment only decides whether a step is read with 16-byte accesses or one
// element at a time, so both paths compute the same bits.
constexpr int kVec = 8;
// #pragma unroll in this header, which host-only sources include too (g++ warns on the pragma).
#ifdef __CUDACC__
#define DT_UNROLL _Pragma("unroll")
#else
#define DT_UNROLL
#endif

// Two bf16 (the low half first, as in memory) ↔ two floats.
__device__ __forceinline__ void bf16x2_to_f32(unsigned w, float& a, float& b) {
  __nv_bfloat162 h;
  h.x = __ushort_as_bfloat16(static_cast<unsigned short>(w & 0xffffu));
  h.y = __ushort_as_bfloat16(static_cast<unsigned short>(w >> 16));
  const float2 f = __bfloat1622float2(h);
  a = f.x;
  b = f.y;
}
__device__ __forceinline__ unsigned f32_to_bf16x2(float a, float b) {  // round to nearest even, as __float2bfloat16
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return unsigned(__bfloat16_as_ushort(h.x)) | unsigned(__bfloat16_as_ushort(h.y)) << 16;
}

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
  // Elements [i, i + n) into v[0, n), n ≤ kVec, the rest of v set to 0. With
  // vec and n = kVec, one 16-byte access of bf16 or two of f32: i must be a
  // multiple of kVec and p 16-byte aligned (the launch checked: vec_ok).
  __device__ __forceinline__ void ld8(int64_t i, float (&v)[kVec], bool vec, int n = kVec) const {
    if (vec && n == kVec) {
      if (bf16) {
        const uint4 u = ld16(static_cast<const __nv_bfloat16*>(p) + i);
        bf16x2_to_f32(u.x, v[0], v[1]);
        bf16x2_to_f32(u.y, v[2], v[3]);
        bf16x2_to_f32(u.z, v[4], v[5]);
        bf16x2_to_f32(u.w, v[6], v[7]);
      } else {
        const float4 a = ld16f(static_cast<const float*>(p) + i), b = ld16f(static_cast<const float*>(p) + i + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
      }
      return;
    }
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) v[j] = j < n ? ld(i + j) : 0.f;
  }
  // v[0, n) into elements [i, i + n); the same conditions as ld8.
  __device__ __forceinline__ void st8(int64_t i, const float (&v)[kVec], bool vec, int n = kVec) const {
    if (vec && n == kVec) {
      if (bf16) {
        st16(static_cast<__nv_bfloat16*>(p) + i, make_uint4(f32_to_bf16x2(v[0], v[1]), f32_to_bf16x2(v[2], v[3]),
                                                            f32_to_bf16x2(v[4], v[5]), f32_to_bf16x2(v[6], v[7])));
      } else {
        st16f(static_cast<float*>(p) + i, make_float4(v[0], v[1], v[2], v[3]));
        st16f(static_cast<float*>(p) + i + 4, make_float4(v[4], v[5], v[6], v[7]));
      }
      return;
    }
    DT_UNROLL
    for (int j = 0; j < kVec; ++j)
      if (j < n) st(i + j, v[j]);
  }
};

// Host side of the vector path, checked once per launch: a flat kernel (one
// run of elements, whose last step may be short) needs every buffer 16-byte
// aligned; a row kernel also needs the row length (the elements from one row's
// start to the next) a multiple of kVec, so every row starts aligned.
inline bool all_aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) & 15u) return false;
  return true;
}
inline bool vec_ok(int64_t row, std::initializer_list<const void*> ptrs) {
  return row % kVec == 0 && all_aligned16(ptrs);
}

// Steps of kVec elements that cover n elements (the last one may be short). A
// flat elementwise launch has one thread per step: thread t owns elements
// [t·kVec, t·kVec + kVec) ∩ [0, n).
__host__ __device__ __forceinline__ int64_t vec_steps(int64_t n) { return (n + kVec - 1) / kVec; }
// Elements of the step that starts at element i of a run of n: kVec, or what is left.
__device__ __forceinline__ int vec_len(int64_t n, int64_t i) { return n - i < kVec ? int(n - i) : kVec; }
// Threads of a block that walks rows of `steps` steps: enough for one step
// each, a multiple of 32 (block_sum), at most max_threads.
inline int row_threads(int64_t steps, int max_threads) {
  const int64_t t = (steps + 31) / 32 * 32;
  return int(t < 32 ? 32 : t < max_threads ? t : max_threads);
}

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
