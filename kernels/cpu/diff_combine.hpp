// The differential combine of one (token, head) row, shared by the fused
// differential attention and the context-parallel path:
//   y = o1 − λ·o2,  out = y · rsqrt(mean(y²) + eps) · g_sub · (1 − λ_init).
#pragma once
#include <cmath>

#include "kernels/ops.hpp"

namespace dt::ops {

// The four λ vectors' gradients (+=) from d loss/dλ, λ = exp(λq1·λk1) − exp(λq2·λk2)
// + λ_init (kernels/cpu/diff_attention.cpp).
void add_lambda_vector_grads(const DiffLambdaGrads& dlam, const DiffLambda& lam, double dlambda);

// Writes out (n) and returns rstd.
inline float combine_row_forward(float* out, const float* o1, const float* o2, float lambda, const float* g,
                                 float post, int n, float eps) {
  float ss = 0.f;
  for (int j = 0; j < n; ++j) {
    out[j] = o1[j] - lambda * o2[j];
    ss += out[j] * out[j];
  }
  const float r = 1.f / std::sqrt(ss / float(n) + eps);
  for (int j = 0; j < n; ++j) out[j] *= r * g[j] * post;
  return r;
}

// dpre (n) = d loss / d(o1 − λ·o2) from dout; adds to dg (n) and returns this
// row's d loss / dλ = Σ dpre·(−o2).
inline double combine_row_backward(float* dpre, double* dg, const float* dout, const float* o1, const float* o2,
                                   float r, float lambda, const float* g, float post, int n) {
  float sdot = 0.f;
  for (int j = 0; j < n; ++j) {
    const float y = o1[j] - lambda * o2[j];
    const float gy = dout[j] * post;
    dpre[j] = gy * g[j];
    sdot += dpre[j] * y;
    dg[j] += double(gy) * y * r;
  }
  const float m = sdot * r * r / float(n);
  double dl = 0.0;
  for (int j = 0; j < n; ++j) {
    dpre[j] = r * (dpre[j] - (o1[j] - lambda * o2[j]) * m);
    dl -= double(dpre[j]) * o2[j];
  }
  return dl;
}

}  // namespace dt::ops
