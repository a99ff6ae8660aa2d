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
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float b1,
                             float b2, float eps, float wd, float bc1, float bc2, float gs, const float* clip) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float g = grad[i] * (clip ? gs * *clip : gs);
  const float mi = b1 * m[i] + (1.f - b1) * g;
  const float vi = b2 * v[i] + (1.f - b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  const float update = (mi / bc1) / (sqrtf(vi / bc2) + eps);
  const float p = param[i];
  param[i] = p - lr * (update + wd * p);
}

// Stage 1 of Σx²: block b sums a grid-strided share of x in double into partial[b].
__global__ void sum_squares_partial_kernel(double* partial, FBuf x, int64_t n) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = x.ld(i);
    s += v * v;
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

__global__ void scale_kernel(FBuf x, int64_t n, float s) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) x.st(i, x.ld(i) * s);
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
  DT_LAUNCH(adamw_kernel, blocks_for(n, kThreads), kThreads, 0, param.f32(), grad.f32(), m.f32(), v.f32(), n, p.lr,
            p.beta1, p.beta2, p.eps, p.weight_decay, bc1, bc2, p.grad_scale, clip);
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
  const int64_t want = blocks_for(n, kThreads * 4);  // ≥ 4 elements per thread
  const int nblocks = int(want < kMaxPartials ? want : kMaxPartials);
  DT_LAUNCH(sum_squares_partial_kernel, nblocks, kThreads, 0, partial, xb, n);
  double* out = acc.defined() ? acc.f64() : nullptr;
  DT_LAUNCH(sum_partials_kernel, 1, kThreads, 0, res, out, partial, nblocks);
  return out ? 0.0 : fetch_host_result(res).value;
}

void scale(Tensor x, float s) {
  const FBuf xb = fbuf(x, "scale");
  const int64_t n = x.numel();
  if (n == 0) return;
  DT_LAUNCH(scale_kernel, blocks_for(n, kThreads), kThreads, 0, xb, n, s);
}

}  // namespace dt::cuda_ops
