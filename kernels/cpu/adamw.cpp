#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

// m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  g = grad_scale·grad
// p −= lr·( m̂ / (sqrt(v̂) + eps) + wd·p ),  m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)
void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& p) {
  DT_ON_CUDA(param, adamw(param, grad, m, v, p));
  const int64_t n = param.numel();
  DT_CHECK(grad.numel() == n && m.numel() == n && v.numel() == n);
  float* pp = param.f32();
  const float* gp = grad.f32();
  float* mp = m.f32();
  float* vp = v.f32();
  const float bc1 = 1.f - float(std::pow(double(p.beta1), double(p.step)));
  const float bc2 = 1.f - float(std::pow(double(p.beta2), double(p.step)));
  const float b1 = p.beta1, b2 = p.beta2, lr = p.lr, wd = p.weight_decay, eps = p.eps,
              gs = p.grad_scale * (p.clip.defined() ? *p.clip.f32() : 1.f);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float g = gp[i] * gs;
    float mi = b1 * mp[i] + (1.f - b1) * g;
    float vi = b2 * vp[i] + (1.f - b2) * g * g;
    mp[i] = mi;
    vp[i] = vi;
    float update = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    pp[i] -= lr * (update + wd * pp[i]);
  }
}

double sum_squares(Tensor x, Tensor acc) {
  DT_ON_CUDA(x, sum_squares(x, acc));
  const int64_t n = x.numel();
  const float* xp = x.f32();
  // Fixed blocks summed in order: the result does not depend on the thread count.
  constexpr int64_t kBlock = 1 << 14;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  static std::vector<double> partial_buf;  // grows once, reused every step
  if (partial_buf.size() < size_t(nblocks)) partial_buf.resize(nblocks);
  double* partial = partial_buf.data();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    double s = 0.0;
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i) s += double(xp[i]) * xp[i];
    partial[b] = s;
  }
  double total = 0.0;
  for (int64_t b = 0; b < nblocks; ++b) total += partial[b];
  if (!acc.defined()) return total;
  *acc.f64() += total;
  return 0.0;
}

void clip_factor(Tensor factor, Tensor norm_sq, double max_norm) {
  DT_ON_CUDA(factor, clip_factor(factor, norm_sq, max_norm));
  const double norm = std::sqrt(*norm_sq.f64());
  *factor.f32() = (max_norm > 0 && norm > max_norm) ? float(max_norm / norm) : 1.f;
}

void scale(Tensor x, float s) {
  DT_ON_CUDA(x, scale(x, s));
  const int64_t n = x.numel();
  float* xp = x.f32();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) xp[i] *= s;
}

}  // namespace dt::ops
