// SwiGLU on CUDA, elementwise in fp32 (kernels/cpu/swiglu.cpp).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// a, b, out (n): out = silu(a)·b, silu(a) = a·σ(a)
__global__ void swiglu_forward_kernel(FBuf out, FBuf a, FBuf b, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float ai = a.ld(i);
  const float s = 1.f / (1.f + expf(-ai));
  out.st(i, ai * s * b.ld(i));
}

// da = dout·b·σ(a)·(1 + a·(1 − σ(a))), db = dout·silu(a); both overwritten
__global__ void swiglu_backward_kernel(FBuf da, FBuf db, FBuf dout, FBuf a, FBuf b, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float ai = a.ld(i), bi = b.ld(i), gi = dout.ld(i);
  const float s = 1.f / (1.f + expf(-ai));
  da.st(i, gi * bi * s * (1.f + ai * (1.f - s)));
  db.st(i, gi * ai * s);
}

}  // namespace

void swiglu_forward(Tensor out, Tensor a, Tensor b) {
  const int64_t n = a.numel();
  DT_CHECK(b.numel() == n && out.numel() == n);
  const char* op = "swiglu_forward";
  const FBuf o = fbuf(out, op), ab = fbuf(a, op), bb = fbuf(b, op);
  if (n == 0) return;
  DT_LAUNCH(swiglu_forward_kernel, blocks_for(n, kThreads), kThreads, 0, o, ab, bb, n);
}

void swiglu_backward(Tensor da, Tensor db, Tensor dout, Tensor a, Tensor b) {
  const int64_t n = a.numel();
  DT_CHECK(b.numel() == n && dout.numel() == n && da.numel() == n && db.numel() == n);
  const char* op = "swiglu_backward";
  const FBuf dab = fbuf(da, op), dbb = fbuf(db, op), gb = fbuf(dout, op), ab = fbuf(a, op), bb = fbuf(b, op);
  if (n == 0) return;
  DT_LAUNCH(swiglu_backward_kernel, blocks_for(n, kThreads), kThreads, 0, dab, dbb, gb, ab, bb, n);
}

}  // namespace dt::cuda_ops
