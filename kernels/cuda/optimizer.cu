// AdamW, Σx² and scaling on CUDA (kernels/cpu/adamw.cpp).
#include <cmath>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// One fused pass; param, grad, m, v (n) f32. bc1, bc2 = 1 − β^step.
// g = grad_scale·clip·grad (clip: the device's clipping factor, or null for 1);
// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·( (m/bc1) / (sqrt(v/bc2) + eps) + wd·p )
// Thread t updates elements [8t, 8t + 8) (cuda_common.cuh: kVec), with 16-byte
// accesses when the four buffers are 16-byte aligned (a ZeRO shard or a
// segment may start anywhere: then element by element, with the same result).
__global__ void adamw_kernel(FBuf param, FBuf grad, FBuf m, FBuf v, int64_t n, float lr, float b1, float b2,
                             float eps, float wd, float bc1, float bc2, float gs, const float* clip, bool vec) {
  const int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kVec;
  if (i >= n) return;
  const int k = vec_len(n, i);
  const float scale = clip ? gs * *clip : gs;
  float pv[kVec], gv[kVec], mv[kVec], vv[kVec];
  grad.ld8(i, gv, vec, k);
  m.ld8(i, mv, vec, k);
  v.ld8(i, vv, vec, k);
  param.ld8(i, pv, vec, k);
  DT_UNROLL
  for (int j = 0; j < kVec; ++j) {
    const float g = gv[j] * scale;
    mv[j] = b1 * mv[j] + (1.f - b1) * g;
    vv[j] = b2 * vv[j] + (1.f - b2) * g * g;
    const float update = (mv[j] / bc1) / (sqrtf(vv[j] / bc2) + eps);
    pv[j] = pv[j] - lr * (update + wd * pv[j]);
  }
  m.st8(i, mv, vec, k);
  v.st8(i, vv, vec, k);
  param.st8(i, pv, vec, k);
}

// Stage 1 of Σx²: block b sums a grid-strided share of x's steps of kVec
// elements in double into partial[b] (the same order with and without 16-byte accesses).
__global__ void sum_squares_partial_kernel(double* partial, FBuf x, int64_t n, bool vec) {
  double s = 0.0;
  const int64_t steps = vec_steps(n);
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < steps; k += int64_t(gridDim.x) * blockDim.x) {
    float v[kVec];
    x.ld8(k * kVec, v, vec, vec_len(n, k * kVec));
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) s += double(v[j]) * double(v[j]);  // the zeros past n add nothing
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2: one block adds the partials (fixed order for a fixed grid) into
// out->value, or onto *acc.
__global__ void sum_partials_kernel(HostResult* out, double* acc, const double* partial, int nblocks) {
  double s = 0.0;
  for (int b = threadIdx.x; b < nblocks; b += blockDim.x) s += partial[b];
  s = block_sum(s);
  if (threadIdx.x != 0) return;
  if (acc) *acc += s;
  else out->value = s;
}

// factor = max_norm / √norm_sq when max_norm > 0 and √norm_sq > max_norm, else 1 (kernels/cpu/adamw.cpp).
__global__ void clip_factor_kernel(float* factor, const double* norm_sq, double max_norm) {
  const double norm = sqrt(*norm_sq);
  *factor = (max_norm > 0 && norm > max_norm) ? float(max_norm / norm) : 1.f;
}

// x (n) ·= s; thread t scales elements [8t, 8t + 8).
__global__ void scale_kernel(FBuf x, int64_t n, float s, bool vec) {
  const int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kVec;
  if (i >= n) return;
  const int k = vec_len(n, i);
  float v[kVec];
  x.ld8(i, v, vec, k);
  DT_UNROLL
  for (int j = 0; j < kVec; ++j) v[j] *= s;
  x.st8(i, v, vec, k);
}

}  // namespace

void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, const ops::AdamWParams& p) {
  const int64_t n = param.numel();
  DT_CHECK(grad.numel() == n && m.numel() == n && v.numel() == n);
  const char* op = "adamw";
  require_dtype(param, DType::F32, op, "param (fp32 master weights)");
  require_dtype(grad, DType::F32, op, "grad");
  require_dtype(m, DType::F32, op, "m");
  require_dtype(v, DType::F32, op, "v");
  if (n == 0) return;
  // Bias corrections exactly as the CPU computes them.
  const float bc1 = 1.f - float(std::pow(double(p.beta1), double(p.step)));
  const float bc2 = 1.f - float(std::pow(double(p.beta2), double(p.step)));
  const float* clip = nullptr;
  if (p.clip.defined()) {
    require_dtype(p.clip, DType::F32, op, "clip");
    clip = p.clip.f32();
  }
  const FBuf pb{param.ptr, false}, gb{grad.ptr, false}, mb{m.ptr, false}, vb{v.ptr, false};
  const bool vec = all_aligned16({pb.p, gb.p, mb.p, vb.p});
  DT_LAUNCH(adamw_kernel, blocks_for(vec_steps(n), kThreads), kThreads, 0, pb, gb, mb, vb, n, p.lr, p.beta1, p.beta2,
            p.eps, p.weight_decay, bc1, bc2, p.grad_scale, clip, vec);
}

void clip_factor(Tensor factor, Tensor norm_sq, double max_norm) {
  require_dtype(factor, DType::F32, "clip_factor", "factor");
  require_dtype(norm_sq, DType::F64, "clip_factor", "norm_sq");
  DT_LAUNCH(clip_factor_kernel, 1, 1, 0, factor.f32(), norm_sq.f64(), max_norm);
}

double sum_squares(Tensor x, Tensor acc) {
  const FBuf xb = fbuf(x, "sum_squares");
  const int64_t n = x.numel();
  if (acc.defined()) require_dtype(acc, DType::F64, "sum_squares", "acc");
  if (n == 0) return 0.0;
  HostResult* res = host_result_scratch();
  double* partial = partials_after(res);
  const int64_t want = blocks_for(vec_steps(n), kThreads);  // ≥ one step (kVec elements) per thread
  const int nblocks = int(want < kMaxPartials ? want : kMaxPartials);
  DT_LAUNCH(sum_squares_partial_kernel, nblocks, kThreads, 0, partial, xb, n, all_aligned16({xb.p}));
  double* out = acc.defined() ? acc.f64() : nullptr;
  DT_LAUNCH(sum_partials_kernel, 1, kThreads, 0, res, out, partial, nblocks);
  return out ? 0.0 : fetch_host_result(res).value;
}

void scale(Tensor x, float s) {
  const FBuf xb = fbuf(x, "scale");
  const int64_t n = x.numel();
  if (n == 0) return;
  DT_LAUNCH(scale_kernel, blocks_for(vec_steps(n), kThreads), kThreads, 0, xb, n, s, all_aligned16({xb.p}));
}

}  // namespace dt::cuda_ops
