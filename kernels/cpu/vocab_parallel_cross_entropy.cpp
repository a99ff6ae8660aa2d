// The pieces of cross-entropy over a vocabulary split across tensor-parallel
// ranks; the model all-reduces rowmax (max) and sumexp/target_logit (sum)
// between them, so logits are never gathered.
#include <algorithm>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

void vocab_shard_row_max(Tensor logits, Tensor rowmax) {
  DT_ON_CUDA(logits, vocab_shard_row_max(logits, rowmax));
  const int64_t N = logits.rows(), V = logits.cols();
  const float* z = logits.f32();
  float* m = rowmax.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    float mx = z[i * V];
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, z[i * V + j]);
    m[i] = mx;
  }
}

void vocab_shard_sumexp_target(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp,
                            Tensor target_logit) {
  DT_ON_CUDA(logits, vocab_shard_sumexp_target(logits, targets, v0, rowmax, sumexp, target_logit));
  const int64_t N = logits.rows(), V = logits.cols();
  const float* z = logits.f32();
  const int32_t* t = targets.i32();
  const float* m = rowmax.f32();
  float* s = sumexp.f32();
  float* tl = target_logit.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    float sum = 0.f;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(z[i * V + j] - m[i]);
    s[i] = sum;
    const int64_t r = int64_t(t[i]) - v0;
    tl[i] = (t[i] >= 0 && r >= 0 && r < V) ? z[i * V + r] : 0.f;
  }
}

void vocab_shard_grad(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp, float grad_scale) {
  DT_ON_CUDA(logits, vocab_shard_grad(logits, targets, v0, rowmax, sumexp, grad_scale));
  const int64_t N = logits.rows(), V = logits.cols();
  float* z = logits.f32();
  const int32_t* t = targets.i32();
  const float* m = rowmax.f32();
  const float* s = sumexp.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    float* zi = z + i * V;
    if (t[i] < 0) {
      std::fill(zi, zi + V, 0.f);
      continue;
    }
    const float inv = grad_scale / s[i];
    for (int64_t j = 0; j < V; ++j) zi[j] = std::exp(zi[j] - m[i]) * inv;
    const int64_t r = int64_t(t[i]) - v0;
    if (r >= 0 && r < V) zi[r] -= grad_scale;
  }
}

double vocab_shard_loss(Tensor losses, Tensor targets, Tensor rowmax, Tensor sumexp, Tensor target_logit,
                     Tensor loss_sum) {
  DT_ON_CUDA(losses, vocab_shard_loss(losses, targets, rowmax, sumexp, target_logit, loss_sum));
  const int64_t N = losses.numel();
  const int32_t* t = targets.i32();
  const float *m = rowmax.f32(), *s = sumexp.f32(), *tl = target_logit.f32();
  float* loss = losses.f32();
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    loss[i] = t[i] < 0 ? 0.f : m[i] + std::log(s[i]) - tl[i];
    total += loss[i];
  }
  if (!loss_sum.defined()) return total;
  *loss_sum.f64() += total;
  return 0.0;
}

}  // namespace dt::ops
