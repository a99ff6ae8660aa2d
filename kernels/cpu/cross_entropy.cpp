#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

// Per row: loss = logsumexp(z) − z[target]. With grad_scale ≠ 0 the row is
// overwritten in place by grad_scale·(softmax(z) − onehot(target)): two passes
// over the row (max and sum, then gradient), no probability buffer.
double cross_entropy(Tensor logits, Tensor targets, Tensor losses, float grad_scale, Tensor loss_sum) {
  DT_ON_CUDA(logits, cross_entropy(logits, targets, losses, grad_scale, loss_sum));
  const int64_t N = logits.rows(), V = logits.cols();
  DT_CHECK(targets.numel() == N && losses.numel() == N);
  float* zp = logits.f32();
  const int32_t* tp = targets.i32();
  float* lp = losses.f32();
  for (int64_t i = 0; i < N; ++i)
    if (tp[i] < -1 || tp[i] >= V) fail("target token ", tp[i], " outside the vocabulary [0, ", V, ")");
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    float* z = zp + i * V;
    const int32_t t = tp[i];
    if (t < 0) {
      lp[i] = 0.f;
      if (grad_scale != 0.f)
        for (int64_t j = 0; j < V; ++j) z[j] = 0.f;
      continue;
    }
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, z[j]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < V; ++j) sum += std::exp(z[j] - mx);
    const float lse = mx + std::log(sum);
    lp[i] = lse - z[t];
    if (grad_scale != 0.f) {
      const float inv = grad_scale / sum;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) z[j] = std::exp(z[j] - mx) * inv;
      z[t] -= grad_scale;
    }
  }
  double total = 0.0;  // summed in row order: deterministic
  for (int64_t i = 0; i < N; ++i) total += lp[i];
  if (!loss_sum.defined()) return total;
  *loss_sum.f64() += total;
  return 0.0;
}

}  // namespace dt::ops
