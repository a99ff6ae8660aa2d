// Differential attention (DESIGN §2) against the float64 reference built from full
// T×T score matrices: forward output and cache, backward dq, dk, dv, the four λ-vector
// gradients and dg_sub against central differences. MHA and H/KV = 2, 4; T no multiple
// of a tile size, with T > 256 in forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/unit/reference_ops.hpp"

namespace {

using namespace dt;
using namespace dt::reftest;

// o1, o2, lse1, lse2: as for standard attention (test_ops_attention.cpp), 1e-5 of
// max|v| and of (1 + max|lse|). out and rstd: y = o1 − λ·o2 is normalised by its own
// RMS, so y's absolute error (~1e-6 · max|v|) becomes relative to rms(y), which for
// long rows of near-uniform attention is ~0.1 · max|v|: 1e-4 of the output scale.
constexpr double kMixRtol = 1e-5;
constexpr double kNormRtol = 1e-4;
// Backward: as for standard attention plus the sub-RMSNorm; 1e-4 of each gradient's
// scale, 1e-5 absolute for T = 1 (dq = dk = 0).
constexpr double kGradRtol = 1e-4;
constexpr double kGradAtol = 1e-5;

double lambda_init_for_layer(int l) { return 0.8 - 0.6 * std::exp(-0.3 * double(l)); }

struct Case {
  int64_t B, T, H, KV, d;
  int layer;
  std::string str() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) +
           " KV=" + std::to_string(KV) + " d=" + std::to_string(d);
  }
  ref::DiffShape shape() const { return {B, T, H, KV, d}; }
  size_t nq() const { return size_t(B * T * 2 * H * d); }
  size_t nk() const { return size_t(B * T * 2 * KV * d); }
  size_t nv() const { return size_t(B * T * KV * 2 * d); }
  size_t nout() const { return size_t(B * T * H * 2 * d); }
  size_t nlse() const { return size_t(B * H * T); }
};

// fp32 inputs and their float64 twins; λ vectors ~ N(0, 0.3) so λ differs from λ_init.
struct Inputs {
  std::vector<float> q, k, v, lq1, lk1, lq2, lk2, g_sub;
  float lambda_init, eps = 1e-5f;
  Inputs(const Case& c, std::mt19937& rng)
      : q(randn(c.nq(), rng)),
        k(randn(c.nk(), rng)),
        v(randn(c.nv(), rng)),
        lq1(randn(size_t(c.d), rng, 0.3)),
        lk1(randn(size_t(c.d), rng, 0.3)),
        lq2(randn(size_t(c.d), rng, 0.3)),
        lk2(randn(size_t(c.d), rng, 0.3)),
        g_sub(randn(size_t(2 * c.d), rng, 0.3, 1.0)),
        lambda_init(float(lambda_init_for_layer(c.layer))) {}
  ops::DiffLambda lam(const Case& c) {
    return {cpu_f32(lq1.data(), {c.d}), cpu_f32(lk1.data(), {c.d}), cpu_f32(lq2.data(), {c.d}),
            cpu_f32(lk2.data(), {c.d}), lambda_init};
  }
  ref::DiffParams params() const {
    return {widen(lq1),          widen(lk1),   widen(lq2), widen(lk2),
            double(lambda_init), widen(g_sub), double(eps)};
  }
};

struct KernelOut {
  std::vector<float> out, o1, o2, lse1, lse2, rstd;
  ops::DiffAttnCache cache(const Case& c) {
    return {cpu_f32(o1.data(), {c.B, c.T, c.H, 2 * c.d}),
            cpu_f32(o2.data(), {c.B, c.T, c.H, 2 * c.d}), cpu_f32(lse1.data(), {c.B, c.H, c.T}),
            cpu_f32(lse2.data(), {c.B, c.H, c.T}), cpu_f32(rstd.data(), {c.B, c.T, c.H})};
  }
};

KernelOut run_forward(const Case& c, Inputs& in) {
  KernelOut r{std::vector<float>(c.nout(), 123.f), std::vector<float>(c.nout(), 123.f),
              std::vector<float>(c.nout(), 123.f), std::vector<float>(c.nlse(), 123.f),
              std::vector<float>(c.nlse(), 123.f), std::vector<float>(c.nlse(), 123.f)};
  ops::diff_attention_forward(cpu_f32(r.out.data(), {c.B, c.T, c.H, 2 * c.d}), r.cache(c),
                              cpu_f32(in.q.data(), {c.B, c.T, 2 * c.H, c.d}),
                              cpu_f32(in.k.data(), {c.B, c.T, 2 * c.KV, c.d}),
                              cpu_f32(in.v.data(), {c.B, c.T, c.KV, 2 * c.d}), in.lam(c),
                              cpu_f32(in.g_sub.data(), {2 * c.d}), in.eps);
  return r;
}

TEST(DiffLambda, EqualsExpDotDifferencePlusInit) {
  std::mt19937 rng(300);
  for (int64_t d : {4, 8, 16, 64}) {
    Case c{1, 1, 1, 1, d, int(d % 5)};
    Inputs in(c, rng);
    ref::DiffParams p = in.params();
    double q1k1 = dot(p.lq1.data(), p.lk1.data(), size_t(d));
    double q2k2 = dot(p.lq2.data(), p.lk2.data(), size_t(d));
    double want = std::exp(q1k1) - std::exp(q2k2) + p.lambda_init;
    // fp32 dot products of d terms and exps: a few roundoffs of the terms' magnitude.
    double tol = 1e-6 * (std::exp(q1k1) + std::exp(q2k2) + std::fabs(p.lambda_init));
    EXPECT_NEAR(ops::diff_lambda(in.lam(c)), want, tol) << "d=" << d;
    EXPECT_NEAR(p.lambda(d), want, 1e-14);
  }
}

void check_forward(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Inputs in(c, rng);
  Vec qd = widen(in.q), kd = widen(in.k), vd = widen(in.v);
  Vec out(c.nout()), o1(c.nout()), o2(c.nout()), lse1(c.nlse()), lse2(c.nlse()), rstd(c.nlse());
  ref::diff_attention(out.data(), o1.data(), o2.data(), lse1.data(), lse2.data(), rstd.data(),
                      qd.data(), kd.data(), vd.data(), in.params(), c.shape());
  KernelOut r = run_forward(c, in);
  const double vs = max_abs(vd);
  EXPECT_TRUE(all_close(r.out, out, kNormRtol * max_abs(out), "diff out " + c.str()));
  EXPECT_TRUE(all_close(r.o1, o1, kMixRtol * vs, "cache o1 " + c.str()));
  EXPECT_TRUE(all_close(r.o2, o2, kMixRtol * vs, "cache o2 " + c.str()));
  EXPECT_TRUE(all_close(r.lse1, lse1, kMixRtol * (1 + max_abs(lse1)), "cache lse1 " + c.str()));
  EXPECT_TRUE(all_close(r.lse2, lse2, kMixRtol * (1 + max_abs(lse2)), "cache lse2 " + c.str()));
  EXPECT_TRUE(all_close(r.rstd, rstd, kNormRtol * max_abs(rstd), "cache rstd " + c.str()));
}

TEST(DiffAttention, ForwardAndCacheMatchFullScoreMatrixReferenceMha) {
  check_forward({2, 1, 2, 2, 4, 0}, 311);
  check_forward({2, 150, 2, 2, 8, 1}, 312);
  check_forward({2, 100, 2, 2, 16, 5}, 313);
}

TEST(DiffAttention, ForwardAndCacheMatchFullScoreMatrixReferenceGqa) {
  check_forward({2, 7, 4, 2, 8, 2}, 321);    // H/KV = 2
  check_forward({2, 37, 4, 1, 16, 3}, 322);  // H/KV = 4
  check_forward({2, 300, 4, 1, 8, 1}, 323);  // H/KV = 4, T > 256
  check_forward({2, 257, 4, 2, 4, 0}, 324);  // one past a power of two
}

// L = Σ out · R. A q element of sub-head 2h or 2h+1 at (b, t) reaches only row t of
// differential head h; a k element of sub-head 2g or 2g+1, or a v element of kv head
// g, at (b, s) reaches rows s.. of the heads h with h / (H/KV) = g. The λ vectors and
// g_sub reach everything but not A·V, so their differences reuse the reference's o1, o2.
void check_backward(const Case& c, size_t per_tensor, uint32_t seed) {
  std::mt19937 rng(seed);
  Inputs in(c, rng);
  auto R = randn(c.nout(), rng);
  Vec qd = widen(in.q), kd = widen(in.k), vd = widen(in.v), Rd = widen(R);
  ref::DiffParams p = in.params();
  const ref::DiffShape s = c.shape();
  const int64_t w = 2 * c.d;
  Vec s1(c.nout()), s2(c.nout()), so(c.nout());
  auto rows_loss = [&](const Vec& o1, const Vec& o2, int64_t b, int64_t h, int64_t t0, int64_t t1,
                       bool mix) {
    if (mix)
      ref::diff_mix_head(s1.data(), s2.data(), nullptr, nullptr, qd.data(), kd.data(), vd.data(), s,
                         b, h, t0, t1);
    ref::diff_combine_head(so.data(), nullptr, o1.data(), o2.data(), p.lambda(c.d), p.g_sub.data(),
                           p.lambda_init, p.eps, s, b, h, t0, t1);
    double L = 0;
    for (int64_t t = t0; t < t1; ++t) {
      size_t off = size_t(((b * c.T + t) * c.H + h) * w);
      L += dot(so.data() + off, Rd.data() + off, size_t(w));
    }
    return L;
  };
  auto q_loss = [&](size_t i) {
    int64_t row = int64_t(i) / c.d;  // (b, t, sub-head)
    int64_t h = (row % (2 * c.H)) / 2, t = (row / (2 * c.H)) % c.T, b = row / (2 * c.H * c.T);
    return rows_loss(s1, s2, b, h, t, t + 1, true);
  };
  auto kv_loss = [&](int64_t width, int64_t heads) {  // k: (d, 2KV); v: (2d, KV)
    return [&, width, heads](size_t i) {
      int64_t row = int64_t(i) / width;
      int64_t g = (row % heads) / (heads / c.KV), t = (row / heads) % c.T, b = row / (heads * c.T);
      double L = 0;
      for (int64_t h = g * s.group(); h < (g + 1) * s.group(); ++h)
        L += rows_loss(s1, s2, b, h, t, c.T, true);
      return L;
    };
  };
  Vec o1(c.nout()), o2(c.nout()), out(c.nout());
  ref::diff_attention(out.data(), o1.data(), o2.data(), nullptr, nullptr, nullptr, qd.data(),
                      kd.data(), vd.data(), p, s);
  auto param_loss = [&](size_t) {
    double L = 0;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h) L += rows_loss(o1, o2, b, h, 0, c.T, false);
    return L;
  };
  auto iq = pick(c.nq(), per_tensor, rng), ik = pick(c.nk(), per_tensor, rng),
       iv = pick(c.nv(), per_tensor, rng), il = pick(size_t(c.d), size_t(c.d), rng),
       ig = pick(size_t(w), size_t(w), rng);
  Vec fdq = finite_diff(qd, iq, q_loss), fdk = finite_diff(kd, ik, kv_loss(c.d, 2 * c.KV)),
      fdv = finite_diff(vd, iv, kv_loss(w, c.KV));
  Vec fdl[4] = {finite_diff(p.lq1, il, param_loss), finite_diff(p.lk1, il, param_loss),
                finite_diff(p.lq2, il, param_loss), finite_diff(p.lk2, il, param_loss)};
  Vec fdg = finite_diff(p.g_sub, ig, param_loss);

  KernelOut f = run_forward(c, in);
  std::vector<float> dq(c.nq(), 123.f), dk(c.nk(), 123.f), dv(c.nv(), 123.f);
  const float pre = 0.25f;
  std::vector<float> dl[4], dg(size_t(w), pre);
  for (auto& e : dl) e.assign(size_t(c.d), pre);
  ops::DiffLambdaGrads dlam{cpu_f32(dl[0].data(), {c.d}), cpu_f32(dl[1].data(), {c.d}),
                            cpu_f32(dl[2].data(), {c.d}), cpu_f32(dl[3].data(), {c.d})};
  ops::diff_attention_backward(
      cpu_f32(dq.data(), {c.B, c.T, 2 * c.H, c.d}), cpu_f32(dk.data(), {c.B, c.T, 2 * c.KV, c.d}),
      cpu_f32(dv.data(), {c.B, c.T, c.KV, w}), dlam, cpu_f32(dg.data(), {w}),
      cpu_f32(R.data(), {c.B, c.T, c.H, w}), cpu_f32(in.q.data(), {c.B, c.T, 2 * c.H, c.d}),
      cpu_f32(in.k.data(), {c.B, c.T, 2 * c.KV, c.d}), cpu_f32(in.v.data(), {c.B, c.T, c.KV, w}),
      in.lam(c), cpu_f32(in.g_sub.data(), {w}), f.cache(c), in.eps);
  EXPECT_TRUE(grad_close(dq.data(), 0.f, iq, fdq, kGradRtol, kGradAtol, "dq " + c.str()));
  EXPECT_TRUE(grad_close(dk.data(), 0.f, ik, fdk, kGradRtol, kGradAtol, "dk " + c.str()));
  EXPECT_TRUE(grad_close(dv.data(), 0.f, iv, fdv, kGradRtol, kGradAtol, "dv " + c.str()));
  const char* names[4] = {"dlambda_q1", "dlambda_k1", "dlambda_q2", "dlambda_k2"};
  for (int j = 0; j < 4; ++j)
    EXPECT_TRUE(grad_close(dl[j].data(), pre, il, fdl[j], kGradRtol, kGradAtol,
                           std::string(names[j]) + " (+=) " + c.str()));
  EXPECT_TRUE(grad_close(dg.data(), pre, ig, fdg, kGradRtol, kGradAtol, "dg_sub (+=) " + c.str()));
}

TEST(DiffAttention, BackwardMatchesFiniteDifferencesMha) {
  check_backward({2, 1, 2, 2, 4, 0}, 1000, 401);  // every element; dq = dk = 0
  check_backward({2, 100, 2, 2, 16, 2}, 40, 402);
}

TEST(DiffAttention, BackwardMatchesFiniteDifferencesGqa) {
  check_backward({2, 7, 4, 2, 4, 1}, 1000, 411);  // every element, H/KV = 2
  check_backward({2, 37, 8, 2, 8, 3}, 40, 412);   // H/KV = 4
  check_backward({2, 300, 2, 1, 8, 1}, 40, 413);  // H/KV = 2, T > 256
}

}  // namespace
