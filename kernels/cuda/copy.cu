// Copies on one CUDA device: same dtype as a device-to-device memcpy, f32 ↔ bf16
// by conversion (round to nearest even), as ops::copy promises.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// dst (n) = src (n), converting through fp32 (exact for bf16 → f32; f32 → bf16
// rounds once). Thread t converts elements [8t, 8t + 8), with 16-byte accesses
// when both buffers are 16-byte aligned (cuda_common.cuh: kVec).
__global__ void convert_kernel(FBuf dst, FBuf src, int64_t n, bool vec) {
  const int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kVec;
  if (i >= n) return;
  const int m = vec_len(n, i);
  float v[kVec];
  src.ld8(i, v, vec, m);
  dst.st8(i, v, vec, m);
}

}  // namespace

void copy(Tensor dst, Tensor src) {
  DT_CHECK(dst.numel() == src.numel(), "copy ", src.shape_str(), " into ", dst.shape_str());
  if (dst.device.is_cpu() || src.device.is_cpu() || !(dst.device == src.device))
    fail("cuda copy: dst and src must be on the same CUDA device, got ", src.device.str(), " → ",
         dst.device.str());
  const int64_t n = src.numel();
  if (dst.dtype == src.dtype) {
    if (n > 0) CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src.ptr, src.bytes(), cudaMemcpyDeviceToDevice, cuda_stream()));
    return;
  }
  if (dst.dtype == DType::I32 || src.dtype == DType::I32)
    fail("cuda copy: i32 copies only to i32, got ", dtype_name(src.dtype), " → ", dtype_name(dst.dtype));
  const FBuf d = fbuf(dst, "copy"), s = fbuf(src, "copy");
  if (n == 0) return;
  DT_LAUNCH(convert_kernel, blocks_for(vec_steps(n), kThreads), kThreads, 0, d, s, n, all_aligned16({d.p, s.p}));
}

}  // namespace dt::cuda_ops
