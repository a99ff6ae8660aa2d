// Block-wide reductions and per-device scratch buffers shared by the
// elementwise/row kernels (rmsnorm, cross-entropy, optimizer). Reductions run
// in a fixed order for a given block size, so results are deterministic.
#pragma once
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"

namespace dt::cuda_ops {

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block; every thread gets the result. blockDim.x must be a
// multiple of 32 (≤ 1024), and every thread of the block must call it.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // a previous call's readers are done with part[]
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = lane < nwarps ? part[lane] : T(0);
  return warp_sum(v);
}

__device__ inline float block_max(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = lane < nwarps ? part[lane] : -INFINITY;
  return warp_max(v);
}

// Device memory an op family keeps between calls, one buffer per (slot,
// device), grown to the largest request and then reused, so steady-state
// steps do not cudaMalloc. Ops run from one host thread per process.
enum ScratchSlot {
  kScratchHostResult,
  kScratchRmsnormDg,
  kScratchAttnDelta,    // flash backward: Δ = rowsum(dO∘O) per map
  kScratchAttnDoBf16,   // flash backward: a bf16 copy of an f32 dO
  kScratchAttnDpre,     // differential backward: d(o1 − λ·o2) in bf16
  kScratchAttnScalars,  // λ, dλ and the per-map dscale
  kScratchCombinePartials,  // differential combine backward: per-block dg_sub and dλ partials
  kScratchSlots
};
constexpr int kMaxDevices = 64;

// The calling thread's current device, checked against kMaxDevices: the index
// of the CUDA ops' per-device tables (this scratch, the flash kernels'
// shared-memory opt-in; gemm.cu keys its cuBLASLt handles and plans by device too).
inline int current_device() {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) fail("cuda ops: device index ", dev, " beyond the supported ", kMaxDevices);
  return dev;
}

// How many blocks of `kernel` (threads each, smem bytes of dynamic shared
// memory) the current device holds at once on all its multiprocessors: the
// grid of a kernel that strides over its rows, to fill the device in one wave.
template <class Kernel>
int64_t resident_blocks(Kernel* kernel, int threads, size_t smem) {
  static int sms[kMaxDevices] = {};
  const int dev = current_device();
  if (sms[dev] == 0) CUDA_CHECK(cudaDeviceGetAttribute(&sms[dev], cudaDevAttrMultiProcessorCount, dev));
  int per_sm = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, reinterpret_cast<const void*>(kernel), threads,
                                                           smem));
  return int64_t(sms[dev]) * (per_sm > 0 ? per_sm : 1);
}

inline void* op_scratch(ScratchSlot slot, size_t bytes) {
  static void* bufs[kScratchSlots][kMaxDevices] = {};
  static size_t sizes[kScratchSlots][kMaxDevices] = {};
  const int dev = current_device();
  if (sizes[slot][dev] < bytes) {
    if (bufs[slot][dev]) CUDA_CHECK(cudaFree(bufs[slot][dev]));  // synchronises: no kernel still reads it
    bufs[slot][dev] = cuda_malloc_counted(bytes);
    sizes[slot][dev] = bytes;
  }
  return bufs[slot][dev];
}

// Where ops that return a host value leave it: reduced by a kernel, then
// copied back with one cudaMemcpy (which orders with the legacy default stream).
struct HostResult {
  double value;
  int bad_index;  // ≥ 0 when a kernel met an invalid input (e.g. a target outside the vocabulary)
  int bad_value;
};
// Per-block partial sums of two-stage reductions live after the result.
constexpr int kMaxPartials = 1024;
inline HostResult* host_result_scratch() {
  return static_cast<HostResult*>(op_scratch(kScratchHostResult, sizeof(HostResult) + kMaxPartials * sizeof(double)));
}
inline double* partials_after(HostResult* r) { return reinterpret_cast<double*>(r + 1); }

inline HostResult fetch_host_result(const HostResult* dev) {
  HostResult h;
  CUDA_CHECK(cudaMemcpy(&h, dev, sizeof(HostResult), cudaMemcpyDeviceToHost));
  return h;
}

}  // namespace dt::cuda_ops
