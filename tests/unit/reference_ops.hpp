// Float64 references for the ops in kernels/ops.hpp, written from the comments
// there and DESIGN §2 (not from the kernels), plus the small helpers the op
// tests share: random inputs, comparisons and central finite differences.
//
// Every reference is a plain loop over row-major buffers; shapes are in the
// comment beside each function. The tests feed the same fp32 inputs (widened)
// to the reference and the kernel, so only the arithmetic differs.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <vector>

namespace dt::ref {

using Vec = std::vector<double>;

// ---- GEMM ------------------------------------------------------------------------
// C (M,N) = alpha · op(A) · op(B) + beta · C; op(A) (M,K) is A (M,K) or A (K,M)ᵀ,
// op(B) (K,N) is B (K,N) or B (N,K)ᵀ.
inline void matmul(double* C, const double* A, bool trans_a, const double* B, bool trans_b,
                   int64_t M, int64_t N, int64_t K, double alpha, double beta) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = trans_a ? A[k * M + i] : A[i * K + k];
        double b = trans_b ? B[j * K + k] : B[k * N + j];
        acc += a * b;
      }
      C[i * N + j] = alpha * acc + beta * C[i * N + j];
    }
}

// y (N,out) = x (N,in) · W (out,in)ᵀ
inline void linear(double* y, const double* x, const double* W, int64_t N, int64_t in,
                   int64_t out) {
  matmul(y, x, false, W, true, N, out, in, 1.0, 0.0);
}

// out (N,D) = E[tokens]; E (V,D)
inline void embedding(double* out, const int32_t* tokens, const double* E, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < D; ++c) out[n * D + c] = E[int64_t(tokens[n]) * D + c];
}

// out (N,C) = x · 1/sqrt(mean(x²) + eps) · g; rstd (N) may be null
inline void rmsnorm(double* out, double* rstd, const double* x, const double* g, int64_t N,
                    int64_t C, double eps) {
  for (int64_t n = 0; n < N; ++n) {
    const double* xr = x + n * C;
    double ms = 0;
    for (int64_t c = 0; c < C; ++c) ms += xr[c] * xr[c];
    double r = 1.0 / std::sqrt(ms / double(C) + eps);
    if (rstd) rstd[n] = r;
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = xr[c] * r * g[c];
  }
}

// x (B,T,nh,d) rotated in place: pair (2i, 2i+1) of every head at sequence index t
// turns by (pos0 + t) · theta^(−2i/d).
inline void rope(double* x, int64_t B, int64_t T, int64_t nh, int64_t d, double theta,
                 int64_t pos0) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < nh; ++h) {
        double* xr = x + ((b * T + t) * nh + h) * d;
        for (int64_t i = 0; i < d / 2; ++i) {
          double ang = double(pos0 + t) * std::pow(theta, -2.0 * double(i) / double(d));
          double c = std::cos(ang), s = std::sin(ang);
          double x0 = xr[2 * i], x1 = xr[2 * i + 1];
          xr[2 * i] = x0 * c - x1 * s;
          xr[2 * i + 1] = x0 * s + x1 * c;
        }
      }
}

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }

// out (n) = silu(a) · b
inline void swiglu(double* out, const double* a, const double* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(a[i]) * b[i];
}

// −log softmax(logits)[target] of one row (V); 0 when target is −1.
inline double cross_entropy_row(const double* logits, int64_t V, int32_t target) {
  if (target < 0) return 0.0;
  double mx = *std::max_element(logits, logits + V);
  double s = 0;
  for (int64_t j = 0; j < V; ++j) s += std::exp(logits[j] - mx);
  return mx + std::log(s) - logits[target];
}

// One AdamW step on n elements, decoupled weight decay; step is 1-based.
inline void adamw(double* p, const double* grad, double* m, double* v, int64_t n, double lr,
                  double b1, double b2, double eps, double wd, int64_t step, double grad_scale) {
  double c1 = 1.0 - std::pow(b1, double(step)), c2 = 1.0 - std::pow(b2, double(step));
  for (int64_t i = 0; i < n; ++i) {
    double g = grad[i] * grad_scale;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    double mhat = m[i] / c1, vhat = v[i] / c2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}

// ---- attention ---------------------------------------------------------------------
// One causal softmax head from its full score matrix, rows [t0, t1) only. Row t of
// q, k, v, out starts at q + t·q_stride (etc.); lse (T) may be null.
//   s[t][u] = q_t · k_u / sqrt(d) for u <= t;  out_t = Σ_u softmax(s[t])_u v_u
inline void softmax_head(double* out, int64_t out_stride, double* lse, const double* q,
                         int64_t q_stride, const double* k, int64_t k_stride, const double* v,
                         int64_t v_stride, int64_t d, int64_t dv, int64_t t0, int64_t t1) {
  const double scale = 1.0 / std::sqrt(double(d));
  Vec s;
  for (int64_t t = t0; t < t1; ++t) {
    s.assign(size_t(t + 1), 0.0);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t u = 0; u <= t; ++u) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += q[t * q_stride + i] * k[u * k_stride + i];
      s[u] = dot * scale;
      mx = std::max(mx, s[u]);
    }
    double sum = 0;
    for (int64_t u = 0; u <= t; ++u) sum += (s[u] = std::exp(s[u] - mx));
    if (lse) lse[t] = mx + std::log(sum);
    double* o = out + t * out_stride;
    for (int64_t j = 0; j < dv; ++j) o[j] = 0;
    for (int64_t u = 0; u <= t; ++u)
      for (int64_t j = 0; j < dv; ++j) o[j] += s[u] / sum * v[u * v_stride + j];
  }
}

// q (B,T,Hq,d), k (B,T,Hkv,d), v (B,T,Hkv,dv); out (B,T,Hq,dv); lse (B,Hq,T)
struct AttnShape {
  int64_t B, T, Hq, Hkv, d, dv;
  int64_t group() const { return Hq / Hkv; }
};

// Query head h of batch b, rows [t0, t1); lse may be null.
inline void attention_head(double* out, double* lse, const double* q, const double* k,
                           const double* v, const AttnShape& s, int64_t b, int64_t h, int64_t t0,
                           int64_t t1) {
  int64_t g = h / s.group();
  softmax_head(out + (b * s.T * s.Hq + h) * s.dv, s.Hq * s.dv,
               lse ? lse + (b * s.Hq + h) * s.T : nullptr, q + (b * s.T * s.Hq + h) * s.d,
               s.Hq * s.d, k + (b * s.T * s.Hkv + g) * s.d, s.Hkv * s.d,
               v + (b * s.T * s.Hkv + g) * s.dv, s.Hkv * s.dv, s.d, s.dv, t0, t1);
}

inline void attention(double* out, double* lse, const double* q, const double* k, const double* v,
                      const AttnShape& s) {
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) attention_head(out, lse, q, k, v, s, b, h, 0, s.T);
}

// Differential attention, DESIGN §2. q (B,T,2H,d), k (B,T,2KV,d), v (B,T,KV,2d);
// o1, o2, out (B,T,H,2d); lse1, lse2 (B,H,T); rstd (B,T,H).
struct DiffShape {
  int64_t B, T, H, KV, d;
  int64_t group() const { return H / KV; }
};

// λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init, each vector (d)
inline double diff_lambda(const double* q1, const double* k1, const double* q2, const double* k2,
                          int64_t d, double lambda_init) {
  double a = 0, c = 0;
  for (int64_t i = 0; i < d; ++i) a += q1[i] * k1[i], c += q2[i] * k2[i];
  return std::exp(a) - std::exp(c) + lambda_init;
}

// o1 = A1·V and o2 = A2·V of differential head h, batch b, rows [t0, t1):
// A_i uses q sub-head 2h+i−1 and k sub-head 2g+i−1, V = v[:, g], g = h / (H/KV).
inline void diff_mix_head(double* o1, double* o2, double* lse1, double* lse2, const double* q,
                          const double* k, const double* v, const DiffShape& s, int64_t b,
                          int64_t h, int64_t t0, int64_t t1) {
  const int64_t d = s.d, g = h / s.group();
  const int64_t qs = 2 * s.H * d, ks = 2 * s.KV * d, vs = s.KV * 2 * d, os = s.H * 2 * d;
  const double* qb = q + b * s.T * qs;
  const double* kb = k + b * s.T * ks;
  const double* vb = v + (b * s.T * s.KV + g) * 2 * d;
  const int64_t ooff = (b * s.T * s.H + h) * 2 * d, loff = (b * s.H + h) * s.T;
  softmax_head(o1 + ooff, os, lse1 ? lse1 + loff : nullptr, qb + 2 * h * d, qs, kb + 2 * g * d, ks,
               vb, vs, d, 2 * d, t0, t1);
  softmax_head(o2 + ooff, os, lse2 ? lse2 + loff : nullptr, qb + (2 * h + 1) * d, qs,
               kb + (2 * g + 1) * d, ks, vb, vs, d, 2 * d, t0, t1);
}

// out = RMSNorm(o1 − λ·o2; g_sub) · (1 − λ_init) for head h, batch b, rows [t0, t1)
inline void diff_combine_head(double* out, double* rstd, const double* o1, const double* o2,
                              double lambda, const double* g_sub, double lambda_init, double eps,
                              const DiffShape& s, int64_t b, int64_t h, int64_t t0, int64_t t1) {
  const int64_t w = 2 * s.d;
  Vec y(static_cast<size_t>(w)), n(static_cast<size_t>(w));
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t off = ((b * s.T + t) * s.H + h) * w;
    for (int64_t j = 0; j < w; ++j) y[j] = o1[off + j] - lambda * o2[off + j];
    double r;
    rmsnorm(n.data(), &r, y.data(), g_sub, 1, w, eps);
    if (rstd) rstd[(b * s.T + t) * s.H + h] = r;
    for (int64_t j = 0; j < w; ++j) out[off + j] = n[j] * (1.0 - lambda_init);
  }
}

struct DiffParams {  // the λ vectors (d each), λ_init, g_sub (2d), eps
  Vec lq1, lk1, lq2, lk2;
  double lambda_init;
  Vec g_sub;
  double eps;
  double lambda(int64_t d) const {
    return diff_lambda(lq1.data(), lk1.data(), lq2.data(), lk2.data(), d, lambda_init);
  }
};

// The whole forward; any of o1, o2 (needed), lse1, lse2, rstd may be scratch.
inline void diff_attention(double* out, double* o1, double* o2, double* lse1, double* lse2,
                           double* rstd, const double* q, const double* k, const double* v,
                           const DiffParams& p, const DiffShape& s) {
  const double lam = p.lambda(s.d);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      diff_mix_head(o1, o2, lse1, lse2, q, k, v, s, b, h, 0, s.T);
      diff_combine_head(out, rstd, o1, o2, lam, p.g_sub.data(), p.lambda_init, p.eps, s, b, h, 0,
                        s.T);
    }
}

}  // namespace dt::ref

// ---- shared test helpers -------------------------------------------------------------
namespace dt::reftest {

using ref::Vec;

inline std::vector<float> randn(size_t n, std::mt19937& rng, double stddev = 1.0,
                                double mean = 0.0) {
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> x(n);
  for (auto& e : x) e = float(dist(rng));
  return x;
}

inline Vec widen(const std::vector<float>& x) { return Vec(x.begin(), x.end()); }

inline double max_abs(const double* x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}
inline double max_abs(const Vec& x) { return max_abs(x.data(), x.size()); }

// Every |got[i] − want[i]| <= tol; the message names the worst element.
inline ::testing::AssertionResult all_close(const float* got, const double* want, size_t n,
                                            double tol, const std::string& what) {
  double worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = std::fabs(double(got[i]) - want[i]);
    if (!(e <= worst)) worst = e, at = i;  // also catches NaN
  }
  if (n == 0 || worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max error " << worst << " > tol " << tol << " at element " << at << " (got "
         << got[at] << ", want " << want[at] << ")";
}
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const Vec& want,
                                            double tol, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  return all_close(got.data(), want.data(), std::min(got.size(), want.size()), tol, what);
}

// `count` distinct indices of [0, n) in random order, or all of them when n <= count.
inline std::vector<size_t> pick(size_t n, size_t count, std::mt19937& rng) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t(0));
  if (n <= count) return idx;
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(count);
  return idx;
}

// Central finite differences of a float64 objective with respect to x[i] for each
// i in idx: loss(i) evaluates the objective (or any part of it that contains every
// term depending on x[i]) at the current x.
inline Vec finite_diff(Vec& x, const std::vector<size_t>& idx,
                       const std::function<double(size_t)>& loss, double h = 1e-6) {
  Vec g(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    const size_t i = idx[j];
    const double x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(i);
    x[i] = x0 - h;
    double lm = loss(i);
    x[i] = x0;
    g[j] = (lp - lm) / (2 * h);
  }
  return g;
}

// The kernel's gradient got[i] − prefill (prefill: what a "+=" buffer held before;
// 0 for overwritten ones) against finite differences fd[j] at idx[j], within
// rtol · max|fd| + atol.
inline ::testing::AssertionResult grad_close(const float* got, float prefill,
                                             const std::vector<size_t>& idx, const Vec& fd,
                                             double rtol, double atol, const std::string& what) {
  const double tol = rtol * max_abs(fd) + atol;
  double worst = -1;
  size_t at = 0;
  for (size_t j = 0; j < idx.size(); ++j) {
    double e = std::fabs((double(got[idx[j]]) - double(prefill)) - fd[j]);
    if (!(e <= worst)) worst = e, at = j;
  }
  if (idx.empty() || worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max error " << worst << " > tol " << tol << " at element " << idx[at]
         << " (kernel " << double(got[idx[at]]) - double(prefill) << ", finite diff " << fd[at]
         << ")";
}

// Σ out · R over a float64 buffer range
inline double dot(const double* a, const double* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace dt::reftest
