// DIFF V2's combine on CUDA (kernels/cpu/diff_v2_combine.cpp): one warp per
// (token, output head) row, fp32 arithmetic, the gate's dot product reduced in
// the warp in a fixed order (deterministic).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"

namespace dt::cuda_ops {
namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// out (rows,d) = o[2r] − σ(lam[r])·o[2r+1]; o (2·rows, d)
__global__ void v2_combine_forward_kernel(FBuf out, FBuf o, FBuf lam, int64_t rows, int d) {
  const int64_t r = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (r >= rows) return;
  const float s = sigmoid(lam.ld(r));
  for (int c = threadIdx.x % 32; c < d; c += 32)
    out.st(r * d + c, o.ld(2 * r * d + c) - s * o.ld((2 * r + 1) * d + c));
}

// d_o[2r] = dout[r], d_o[2r+1] = −σ·dout[r]; dlam[r] = −σ(1−σ)·⟨dout[r], o[2r+1]⟩
__global__ void v2_combine_backward_kernel(FBuf d_o, FBuf dlam, FBuf dout, FBuf o, FBuf lam, int64_t rows, int d) {
  const int64_t r = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (r >= rows) return;
  const float s = sigmoid(lam.ld(r));
  float dot = 0.f;
  for (int c = threadIdx.x % 32; c < d; c += 32) {
    const float g = dout.ld(r * d + c);
    d_o.st(2 * r * d + c, g);
    d_o.st((2 * r + 1) * d + c, -s * g);
    dot += g * o.ld((2 * r + 1) * d + c);
  }
  dot = warp_sum(dot);
  if (threadIdx.x % 32 == 0) dlam.st(r, -s * (1.f - s) * dot);
}

int64_t head_size(Tensor out_like, Tensor o, Tensor lam, const char* op) {
  const int64_t rows = lam.numel(), d = rows ? out_like.numel() / rows : 0;
  if (rows == 0 || out_like.numel() != rows * d || o.numel() != 2 * rows * d)
    fail(op, ": out ", out_like.shape_str(), ", o ", o.shape_str(), " and lam ", lam.shape_str(), " disagree");
  return d;
}

}  // namespace

void diff_v2_combine_forward(Tensor out, Tensor o, Tensor lam) {
  const char* op = "diff_v2_combine_forward";
  const int64_t rows = lam.numel(), d = head_size(out, o, lam, op);
  DT_LAUNCH(v2_combine_forward_kernel, blocks_for(rows, kWarps), 32 * kWarps, 0, fbuf(out, op), fbuf(o, op),
            fbuf(lam, op), rows, int(d));
}

void diff_v2_combine_backward(Tensor d_o, Tensor dlam, Tensor dout, Tensor o, Tensor lam) {
  const char* op = "diff_v2_combine_backward";
  const int64_t rows = lam.numel(), d = head_size(dout, o, lam, op);
  if (d_o.numel() != o.numel() || dlam.numel() != rows)
    fail(op, ": d_o ", d_o.shape_str(), " or dlam ", dlam.shape_str(), " disagrees with o ", o.shape_str());
  DT_LAUNCH(v2_combine_backward_kernel, blocks_for(rows, kWarps), 32 * kWarps, 0, fbuf(d_o, op), fbuf(dlam, op),
            fbuf(dout, op), fbuf(o, op), fbuf(lam, op), rows, int(d));
}

}  // namespace dt::cuda_ops
