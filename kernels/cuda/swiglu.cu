// SwiGLU on CUDA, elementwise in fp32 (kernels/cpu/swiglu.cpp). Thread t owns
// the elements [8t, 8t + 8) (cuda_common.cuh: kVec), read and written with
// 16-byte accesses when every buffer is 16-byte aligned.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// a, b, out (n): out = silu(a)·b, silu(a) = a·σ(a)
__global__ void swiglu_forward_kernel(FBuf out, FBuf a, FBuf b, int64_t n, bool vec) {
  const int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kVec;
  if (i >= n) return;
  const int m = vec_len(n, i);
  float av[kVec], bv[kVec], o[kVec];
  a.ld8(i, av, vec, m);
  b.ld8(i, bv, vec, m);
  DT_UNROLL
  for (int j = 0; j < kVec; ++j) {
    const float s = 1.f / (1.f + expf(-av[j]));
    o[j] = av[j] * s * bv[j];
  }
  out.st8(i, o, vec, m);
}

// da = dout·b·σ(a)·(1 + a·(1 − σ(a))), db = dout·silu(a); both overwritten
__global__ void swiglu_backward_kernel(FBuf da, FBuf db, FBuf dout, FBuf a, FBuf b, int64_t n, bool vec) {
  const int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kVec;
  if (i >= n) return;
  const int m = vec_len(n, i);
  float av[kVec], bv[kVec], gv[kVec];
  a.ld8(i, av, vec, m);
  b.ld8(i, bv, vec, m);
  dout.ld8(i, gv, vec, m);
  DT_UNROLL
  for (int j = 0; j < kVec; ++j) {
    const float s = 1.f / (1.f + expf(-av[j]));
    const float dbj = gv[j] * av[j] * s;
    av[j] = gv[j] * bv[j] * s * (1.f + av[j] * (1.f - s));  // da, in place of a
    bv[j] = dbj;                                             // db, in place of b
  }
  da.st8(i, av, vec, m);
  db.st8(i, bv, vec, m);
}

}  // namespace

void swiglu_forward(Tensor out, Tensor a, Tensor b) {
  const int64_t n = a.numel();
  DT_CHECK(b.numel() == n && out.numel() == n);
  const char* op = "swiglu_forward";
  const FBuf o = fbuf(out, op), ab = fbuf(a, op), bb = fbuf(b, op);
  if (n == 0) return;
  const bool vec = all_aligned16({o.p, ab.p, bb.p});
  DT_LAUNCH(swiglu_forward_kernel, blocks_for(vec_steps(n), kThreads), kThreads, 0, o, ab, bb, n, vec);
}

void swiglu_backward(Tensor da, Tensor db, Tensor dout, Tensor a, Tensor b) {
  const int64_t n = a.numel();
  DT_CHECK(b.numel() == n && dout.numel() == n && da.numel() == n && db.numel() == n);
  const char* op = "swiglu_backward";
  const FBuf dab = fbuf(da, op), dbb = fbuf(db, op), gb = fbuf(dout, op), ab = fbuf(a, op), bb = fbuf(b, op);
  if (n == 0) return;
  const bool vec = all_aligned16({dab.p, dbb.p, gb.p, ab.p, bb.p});
  DT_LAUNCH(swiglu_backward_kernel, blocks_for(vec_steps(n), kThreads), kThreads, 0, dab, dbb, gb, ab, bb, n, vec);
}

}  // namespace dt::cuda_ops
