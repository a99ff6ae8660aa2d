// Standard causal attention (MHA and grouped-query) against the float64 reference
// built from full T×T score matrices (reference_ops.hpp). T values are chosen to be
// no multiple of any plausible tile size, with T > 256 in forward and backward.
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

// Forward tolerances. out is a convex combination of v rows whose fp32 weights carry a
// few roundoffs each (exp of scores |s| < ~6, online rescaling per tile), so its error is
// a small multiple of 6e-8 · max|v|; 1e-5 · max|v| leaves a wide margin yet catches a
// single missing or extra key (weight >= 1/T >= 3e-3). lse: an fp32 log-sum-exp of
// magnitude |lse|, a few roundoffs of it: 1e-5 · (1 + max|lse|).
constexpr double kOutRtol = 1e-5;
constexpr double kLseRtol = 1e-5;
// Backward: dq, dk, dv are sums over up to T rows of products recomputed from lse in
// fp32; 1e-4 of each gradient's scale (max |finite difference| over the checked
// elements), plus 1e-5 absolute for T = 1 where dq and dk are exactly zero.
constexpr double kGradRtol = 1e-4;
constexpr double kGradAtol = 1e-5;

struct Case {
  int64_t B, T, Hq, Hkv, d, dv;
  std::string str() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " Hq=" + std::to_string(Hq) +
           " Hkv=" + std::to_string(Hkv) + " d=" + std::to_string(d) + " dv=" + std::to_string(dv);
  }
  ref::AttnShape shape() const { return {B, T, Hq, Hkv, d, dv}; }
  size_t nq() const { return size_t(B * T * Hq * d); }
  size_t nk() const { return size_t(B * T * Hkv * d); }
  size_t nv() const { return size_t(B * T * Hkv * dv); }
  size_t nout() const { return size_t(B * T * Hq * dv); }
};

struct Inputs {
  std::vector<float> q, k, v;
  Inputs(const Case& c, std::mt19937& rng)
      : q(randn(c.nq(), rng)), k(randn(c.nk(), rng)), v(randn(c.nv(), rng)) {}
};

struct KernelOut {
  std::vector<float> out, lse;
};

KernelOut run_forward(const Case& c, Inputs& in) {
  KernelOut r{std::vector<float>(c.nout(), 123.f),
              std::vector<float>(size_t(c.B * c.Hq * c.T), 123.f)};
  ops::attention_forward(
      cpu_f32(r.out.data(), {c.B, c.T, c.Hq, c.dv}), cpu_f32(r.lse.data(), {c.B, c.Hq, c.T}),
      cpu_f32(in.q.data(), {c.B, c.T, c.Hq, c.d}), cpu_f32(in.k.data(), {c.B, c.T, c.Hkv, c.d}),
      cpu_f32(in.v.data(), {c.B, c.T, c.Hkv, c.dv}));
  return r;
}

void check_forward(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Inputs in(c, rng);
  Vec qd = widen(in.q), kd = widen(in.k), vd = widen(in.v);
  Vec out(c.nout()), lse(static_cast<size_t>(c.B * c.Hq * c.T));
  ref::attention(out.data(), lse.data(), qd.data(), kd.data(), vd.data(), c.shape());
  KernelOut r = run_forward(c, in);
  EXPECT_TRUE(all_close(r.out, out, kOutRtol * max_abs(vd), "attention out " + c.str()));
  EXPECT_TRUE(all_close(r.lse, lse, kLseRtol * (1 + max_abs(lse)), "attention lse " + c.str()));
}

TEST(Attention, ForwardMatchesFullScoreMatrixReferenceMha) {
  check_forward({2, 1, 2, 2, 4, 4}, 101);
  check_forward({2, 100, 4, 4, 8, 8}, 102);
  check_forward({2, 300, 2, 2, 16, 16}, 103);
}

TEST(Attention, ForwardMatchesFullScoreMatrixReferenceGqa) {
  check_forward({2, 7, 4, 2, 8, 8}, 111);      // H/KV = 2
  check_forward({2, 37, 4, 1, 16, 16}, 112);   // H/KV = 4
  check_forward({2, 150, 8, 2, 16, 16}, 113);  // H/KV = 4
  check_forward({2, 300, 4, 1, 16, 16}, 114);  // T > 256
  check_forward({2, 257, 4, 2, 4, 4}, 115);    // one past a power of two
}

TEST(Attention, ForwardSupportsValueWidthDifferentFromKeyWidth) {
  check_forward({2, 37, 4, 2, 8, 16}, 121);
  check_forward({2, 130, 2, 1, 4, 8}, 122);
}

TEST(Attention, FirstRowAttendsOnlyToItself) {
  // Causality at its sharpest: out[t=0] = v[0] of its kv head, lse = q0·k0/sqrt(d).
  Case c{2, 5, 4, 2, 8, 8};
  std::mt19937 rng(131);
  Inputs in(c, rng);
  KernelOut r = run_forward(c, in);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h) {
      int64_t g = h / (c.Hq / c.Hkv);
      for (int64_t j = 0; j < c.dv; ++j)
        EXPECT_NEAR(r.out[size_t(((b * c.T) * c.Hq + h) * c.dv + j)],
                    in.v[size_t(((b * c.T) * c.Hkv + g) * c.dv + j)], 1e-6);
    }
}

// L = Σ out · R. An element of q at (b, t, h) reaches only output row t of head h; an
// element of k or v at (b, s, g) reaches rows s.. of the heads reading kv head g. Each
// finite difference evaluates just those rows of the float64 reference.
void check_backward(const Case& c, size_t per_tensor, uint32_t seed) {
  std::mt19937 rng(seed);
  Inputs in(c, rng);
  auto R = randn(c.nout(), rng);
  Vec qd = widen(in.q), kd = widen(in.k), vd = widen(in.v), Rd = widen(R);
  const ref::AttnShape s = c.shape();
  Vec scratch(c.nout());
  auto rows_loss = [&](int64_t b, int64_t h, int64_t t0, int64_t t1) {
    ref::attention_head(scratch.data(), nullptr, qd.data(), kd.data(), vd.data(), s, b, h, t0, t1);
    double L = 0;
    for (int64_t t = t0; t < t1; ++t) {
      size_t off = size_t(((b * c.T + t) * c.Hq + h) * c.dv);
      L += dot(scratch.data() + off, Rd.data() + off, size_t(c.dv));
    }
    return L;
  };
  auto q_loss = [&](size_t i) {
    int64_t row = int64_t(i) / c.d;  // (b, t, h)
    int64_t h = row % c.Hq, t = (row / c.Hq) % c.T, b = row / (c.Hq * c.T);
    return rows_loss(b, h, t, t + 1);
  };
  auto kv_loss = [&](int64_t width) {
    return [&, width](size_t i) {
      int64_t row = int64_t(i) / width;  // (b, s, g)
      int64_t g = row % c.Hkv, t = (row / c.Hkv) % c.T, b = row / (c.Hkv * c.T);
      double L = 0;
      for (int64_t h = g * s.group(); h < (g + 1) * s.group(); ++h) L += rows_loss(b, h, t, c.T);
      return L;
    };
  };
  auto iq = pick(c.nq(), per_tensor, rng), ik = pick(c.nk(), per_tensor, rng),
       iv = pick(c.nv(), per_tensor, rng);
  Vec fdq = finite_diff(qd, iq, q_loss), fdk = finite_diff(kd, ik, kv_loss(c.d)),
      fdv = finite_diff(vd, iv, kv_loss(c.dv));

  KernelOut f = run_forward(c, in);
  std::vector<float> dq(c.nq(), 123.f), dk(c.nk(), 123.f), dv(c.nv(), 123.f);
  ops::attention_backward(
      cpu_f32(dq.data(), {c.B, c.T, c.Hq, c.d}), cpu_f32(dk.data(), {c.B, c.T, c.Hkv, c.d}),
      cpu_f32(dv.data(), {c.B, c.T, c.Hkv, c.dv}), cpu_f32(R.data(), {c.B, c.T, c.Hq, c.dv}),
      cpu_f32(in.q.data(), {c.B, c.T, c.Hq, c.d}), cpu_f32(in.k.data(), {c.B, c.T, c.Hkv, c.d}),
      cpu_f32(in.v.data(), {c.B, c.T, c.Hkv, c.dv}), cpu_f32(f.out.data(), {c.B, c.T, c.Hq, c.dv}),
      cpu_f32(f.lse.data(), {c.B, c.Hq, c.T}));
  EXPECT_TRUE(grad_close(dq.data(), 0.f, iq, fdq, kGradRtol, kGradAtol, "dq " + c.str()));
  EXPECT_TRUE(grad_close(dk.data(), 0.f, ik, fdk, kGradRtol, kGradAtol, "dk " + c.str()));
  EXPECT_TRUE(grad_close(dv.data(), 0.f, iv, fdv, kGradRtol, kGradAtol, "dv " + c.str()));
}

TEST(Attention, BackwardMatchesFiniteDifferencesMha) {
  check_backward({2, 1, 2, 2, 4, 4}, 1000, 201);  // every element; dq = dk = 0
  check_backward({2, 100, 4, 4, 4, 4}, 40, 202);
}

TEST(Attention, BackwardMatchesFiniteDifferencesGqa) {
  check_backward({2, 7, 4, 2, 8, 8}, 1000, 211);   // every element, H/KV = 2
  check_backward({2, 37, 4, 1, 16, 16}, 40, 212);  // H/KV = 4
  check_backward({2, 300, 2, 1, 8, 8}, 40, 213);   // T > 256
}

TEST(Attention, BackwardMatchesFiniteDifferencesWithWiderValues) {
  check_backward({2, 37, 2, 1, 8, 16}, 40, 221);
}

}  // namespace
