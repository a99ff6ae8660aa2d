// The context-parallel building blocks on the CPU (kernels/ops.hpp): the
// differential combine against the float64 reference and finite differences, λ
// taken from its vectors inside the ops; and the ring decomposition (block forward,
// log-sum-exp merge, combine, then combine backward and block backward with map 2
// scaled by −λ) against the fused single-rank ops, which test_ops_attention.cpp and
// test_ops_diff_attention.cpp check against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/unit/reference_ops.hpp"

namespace {

using namespace dt;
using namespace dt::reftest;

constexpr float kEps = 1e-5f;

struct Lambda {  // λ vectors (d each, ~N(0, 0.3²): λ well away from λ_init), fp32 and float64
  std::vector<float> v[4];
  float lambda_init;
  Lambda(int64_t d, std::mt19937& rng) : lambda_init(0.5f) {
    for (auto& x : v) x = randn(size_t(d), rng, 0.3);
  }
  ops::DiffLambda op() {
    const int64_t d = int64_t(v[0].size());
    return {cpu_f32(v[0].data(), {d}), cpu_f32(v[1].data(), {d}), cpu_f32(v[2].data(), {d}),
            cpu_f32(v[3].data(), {d}), lambda_init};
  }
};

TEST(DiffLambda, IntoWritesTheValueDiffLambdaReturns) {
  std::mt19937 rng(501);
  Lambda lam(16, rng);
  float out = 123.f;
  ops::diff_lambda_into(cpu_f32(&out, {1}), lam.op());
  EXPECT_EQ(out, ops::diff_lambda(lam.op()));
}

// ---- the differential combine -----------------------------------------------------
// rows (b, t, h) of width 2d; o1, o2 ~ N(0, 1), so y = o1 − λ·o2 has rms ~1 and the
// fp32 forward is good to a few 1e-7 of the output scale: 1e-5 of it. Gradients: 1e-4 of
// each gradient's scale against central differences (h = 1e-6 in float64), as in
// test_ops_diff_attention.cpp.
struct CombineCase {
  int64_t B, T, H, d;
  ref::DiffShape shape() const { return {B, T, H, H, d}; }
  size_t n() const { return size_t(B * T * H * 2 * d); }
};

TEST(DiffCombine, ForwardMatchesFloat64Reference) {
  std::mt19937 rng(502);
  for (const CombineCase c : {CombineCase{1, 1, 1, 4}, CombineCase{2, 9, 3, 8}}) {
    const int64_t w = 2 * c.d;
    Lambda lam(c.d, rng);
    auto o1 = randn(c.n(), rng), o2 = randn(c.n(), rng), g = randn(size_t(w), rng, 0.3, 1.0);
    std::vector<float> out(c.n(), 123.f), rstd(size_t(c.B * c.T * c.H), 123.f);
    ops::diff_combine_forward(cpu_f32(out.data(), {c.B, c.T, c.H, w}), cpu_f32(rstd.data(), {c.B, c.T, c.H}),
                              cpu_f32(o1.data(), {c.B, c.T, c.H, w}), cpu_f32(o2.data(), {c.B, c.T, c.H, w}), lam.op(),
                              cpu_f32(g.data(), {w}), kEps);
    const Vec lq1 = widen(lam.v[0]), lk1 = widen(lam.v[1]), lq2 = widen(lam.v[2]), lk2 = widen(lam.v[3]);
    const double lambda = ref::diff_lambda(lq1.data(), lk1.data(), lq2.data(), lk2.data(), c.d, lam.lambda_init);
    Vec want(c.n()), want_rstd(rstd.size()), o1d = widen(o1), o2d = widen(o2), gd = widen(g);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        ref::diff_combine_head(want.data(), want_rstd.data(), o1d.data(), o2d.data(), lambda, gd.data(),
                               lam.lambda_init, kEps, c.shape(), b, h, 0, c.T);
    EXPECT_TRUE(all_close(out, want, 1e-5 * max_abs(want), "combine out"));
    EXPECT_TRUE(all_close(rstd, want_rstd, 1e-5 * max_abs(want_rstd), "combine rstd"));
  }
}

// L = Σ out · R. d L/d o1 = dpre (y = o1 − λ·o2), d L/d o2 = −λ·dpre; g_sub and the
// four λ vectors (+= onto 0.25) reach every row.
TEST(DiffCombine, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(503);
  const CombineCase c{2, 9, 3, 8};
  const int64_t w = 2 * c.d;
  Lambda lam(c.d, rng);
  auto o1 = randn(c.n(), rng), o2 = randn(c.n(), rng), g = randn(size_t(w), rng, 0.3, 1.0), R = randn(c.n(), rng);
  Vec o1d = widen(o1), o2d = widen(o2), gd = widen(g), Rd = widen(R), lv[4];
  for (int j = 0; j < 4; ++j) lv[j] = widen(lam.v[j]);
  Vec so(c.n());
  auto rows_loss = [&](int64_t t0, int64_t t1, int64_t b0, int64_t b1, int64_t h0, int64_t h1) {
    const double lambda = ref::diff_lambda(lv[0].data(), lv[1].data(), lv[2].data(), lv[3].data(), c.d, lam.lambda_init);
    double L = 0;
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t h = h0; h < h1; ++h) {
        ref::diff_combine_head(so.data(), nullptr, o1d.data(), o2d.data(), lambda, gd.data(), lam.lambda_init, kEps,
                               c.shape(), b, h, t0, t1);
        for (int64_t t = t0; t < t1; ++t) {
          const size_t off = size_t(((b * c.T + t) * c.H + h) * w);
          L += dot(so.data() + off, Rd.data() + off, size_t(w));
        }
      }
    return L;
  };
  auto row_loss = [&](size_t i) {  // the one row (b, t, h) element i of o1 or o2 lies in
    const int64_t row = int64_t(i) / w, h = row % c.H, t = row / c.H % c.T, b = row / (c.H * c.T);
    return rows_loss(t, t + 1, b, b + 1, h, h + 1);
  };
  auto all_loss = [&](size_t) { return rows_loss(0, c.T, 0, c.B, 0, c.H); };

  std::vector<float> rstd(size_t(c.B * c.T * c.H)), out(c.n());
  ops::diff_combine_forward(cpu_f32(out.data(), {c.B, c.T, c.H, w}), cpu_f32(rstd.data(), {c.B, c.T, c.H}),
                            cpu_f32(o1.data(), {c.B, c.T, c.H, w}), cpu_f32(o2.data(), {c.B, c.T, c.H, w}), lam.op(),
                            cpu_f32(g.data(), {w}), kEps);
  const float pre = 0.25f;
  std::vector<float> dpre(c.n(), 123.f), dg(size_t(w), pre), dl[4];
  for (auto& e : dl) e.assign(size_t(c.d), pre);
  ops::diff_combine_backward(cpu_f32(dpre.data(), {c.B, c.T, c.H, w}), cpu_f32(dg.data(), {w}),
                             {cpu_f32(dl[0].data(), {c.d}), cpu_f32(dl[1].data(), {c.d}), cpu_f32(dl[2].data(), {c.d}),
                              cpu_f32(dl[3].data(), {c.d})},
                             cpu_f32(R.data(), {c.B, c.T, c.H, w}), cpu_f32(o1.data(), {c.B, c.T, c.H, w}),
                             cpu_f32(o2.data(), {c.B, c.T, c.H, w}), cpu_f32(rstd.data(), {c.B, c.T, c.H}), lam.op(),
                             cpu_f32(g.data(), {w}));
  const auto io = pick(c.n(), 120, rng), ig = pick(size_t(w), size_t(w), rng), il = pick(size_t(c.d), size_t(c.d), rng);
  const Vec fd1 = finite_diff(o1d, io, row_loss), fd2 = finite_diff(o2d, io, row_loss);
  const float lambda = ops::diff_lambda(lam.op());
  std::vector<float> d_o2(c.n());
  for (size_t i = 0; i < c.n(); ++i) d_o2[i] = -lambda * dpre[i];
  EXPECT_TRUE(grad_close(dpre.data(), 0.f, io, fd1, 1e-4, 1e-6, "dpre = dL/do1"));
  EXPECT_TRUE(grad_close(d_o2.data(), 0.f, io, fd2, 1e-4, 1e-6, "-λ·dpre = dL/do2"));
  EXPECT_TRUE(grad_close(dg.data(), pre, ig, finite_diff(gd, ig, all_loss), 1e-4, 1e-6, "dg_sub (+=)"));
  const char* names[4] = {"dlambda_q1", "dlambda_k1", "dlambda_q2", "dlambda_k2"};
  for (int j = 0; j < 4; ++j)
    EXPECT_TRUE(grad_close(dl[j].data(), pre, il, finite_diff(lv[j], il, all_loss), 1e-4, 1e-6,
                           std::string(names[j]) + " (+=)"));
}

// ---- the ring decomposition ------------------------------------------------------------
// Two chunks of C rows, as one cp rank holds them; its visible blocks: chunk 0 and
// chunk 1 each causally against themselves, chunk 1 fully against chunk 0. Forward
// outputs and gradients agree with the fused op up to fp32 reassociation (merging by
// log-sum-exp, separate tiles): 1e-5 of each tensor's scale, 1e-6 absolute.
struct RingCase {
  int64_t C, d, H, KV;
};

void check_ring(const RingCase& rc, int maps, std::mt19937& rng) {
  const int64_t B = 2, C = rc.C, T = 2 * C, d = rc.d, H = rc.H, KV = rc.KV, dv = maps * d;
  const std::string what = " C=" + std::to_string(C) + " d=" + std::to_string(d) + " H=" + std::to_string(H) +
                           " KV=" + std::to_string(KV) + " maps=" + std::to_string(maps);
  auto t4 = [&](std::vector<float>& x, int64_t a, int64_t b) { return cpu_f32(x.data(), {B, T, a, b}); };
  auto q = randn(size_t(B * T * H * maps * d), rng), k = randn(size_t(B * T * KV * maps * d), rng),
       v = randn(size_t(B * T * KV * dv), rng), R = randn(size_t(B * T * H * dv), rng),
       g = randn(size_t(dv), rng, 0.3, 1.0);
  Lambda lam(d, rng);
  const ops::DiffLambda L = lam.op();
  const size_t nout = size_t(B * T * H * dv), nstat = size_t(B * H * T);
  auto zeros = [](size_t n) { return std::vector<float>(n, 0.f); };

  // Fused.
  std::vector<float> fo = zeros(nout), fo1 = zeros(nout), fo2 = zeros(nout), fl1 = zeros(nstat), fl2 = zeros(nstat),
                     frs = zeros(nstat), fdq = zeros(q.size()), fdk = zeros(k.size()), fdv = zeros(v.size()),
                     fdg = zeros(size_t(dv)), fdl[4] = {zeros(d), zeros(d), zeros(d), zeros(d)};
  ops::DiffAttnCache fc{t4(fo1, H, dv), t4(fo2, H, dv), cpu_f32(fl1.data(), {B, H, T}), cpu_f32(fl2.data(), {B, H, T}),
                        cpu_f32(frs.data(), {B, T, H})};
  ops::DiffLambdaGrads fgl{cpu_f32(fdl[0].data(), {d}), cpu_f32(fdl[1].data(), {d}), cpu_f32(fdl[2].data(), {d}),
                           cpu_f32(fdl[3].data(), {d})};
  if (maps == 1) {
    ops::attention_forward(t4(fo, H, d), fc.lse1, t4(q, H, d), t4(k, KV, d), t4(v, KV, d));
    ops::attention_backward(t4(fdq, H, d), t4(fdk, KV, d), t4(fdv, KV, d), t4(R, H, d), t4(q, H, d), t4(k, KV, d),
                            t4(v, KV, d), t4(fo, H, d), fc.lse1);
  } else {
    ops::diff_attention_forward(t4(fo, H, dv), fc, t4(q, 2 * H, d), t4(k, 2 * KV, d), t4(v, KV, dv), L,
                                cpu_f32(g.data(), {dv}), kEps);
    ops::diff_attention_backward(t4(fdq, 2 * H, d), t4(fdk, 2 * KV, d), t4(fdv, KV, dv), fgl,
                                 cpu_f32(fdg.data(), {dv}), t4(R, H, dv), t4(q, 2 * H, d), t4(k, 2 * KV, d),
                                 t4(v, KV, dv), L, cpu_f32(g.data(), {dv}), fc, kEps);
  }

  // Ring: block forward + merge (+ combine), then combine backward + block backward.
  std::vector<float> o[2] = {zeros(nout), zeros(nout)}, l[2] = {zeros(nstat), zeros(nstat)},
                     bo[2] = {zeros(nout), zeros(nout)}, bl[2] = {zeros(nstat), zeros(nstat)};
  Tensor O[2], Lse[2], BO[2], BL[2];
  for (int m = 0; m < 2; ++m) {
    O[m] = t4(o[m], H, dv), BO[m] = t4(bo[m], H, dv);
    Lse[m] = cpu_f32(l[m].data(), {B, H, T}), BL[m] = cpu_f32(bl[m].data(), {B, H, T});
    ops::fill(Lse[m], -std::numeric_limits<float>::infinity());
  }
  const ops::AttnBlock blocks[3] = {{0, int(C), 0, int(C), true}, {int(C), int(C), 0, int(C), false},
                                    {int(C), int(C), int(C), int(C), true}};
  const Tensor tq = t4(q, H * maps, d), tk = t4(k, KV * maps, d), tv = t4(v, KV, dv);
  for (const auto& blk : blocks) {
    ops::attention_block_forward(maps, BO, BL, tq, tk, tv, blk);
    for (int m = 0; m < maps; ++m) ops::attention_merge(O[m], Lse[m], BO[m], BL[m], blk.q0, blk.nq);
  }
  std::vector<float> ro = maps == 1 ? o[0] : zeros(nout), rrs = zeros(nstat), dpre = zeros(nout),
                     rdq = zeros(q.size()), rdk = zeros(k.size()), rdv = zeros(v.size()), rdg = zeros(size_t(dv)),
                     rdl[4] = {zeros(d), zeros(d), zeros(d), zeros(d)};
  Tensor dO = t4(R, H, dv);
  if (maps == 2) {
    ops::diff_combine_forward(t4(ro, H, dv), cpu_f32(rrs.data(), {B, T, H}), O[0], O[1], L, cpu_f32(g.data(), {dv}),
                              kEps);
    ops::diff_combine_backward(t4(dpre, H, dv), cpu_f32(rdg.data(), {dv}),
                               {cpu_f32(rdl[0].data(), {d}), cpu_f32(rdl[1].data(), {d}), cpu_f32(rdl[2].data(), {d}),
                                cpu_f32(rdl[3].data(), {d})},
                               dO, O[0], O[1], cpu_f32(rrs.data(), {B, T, H}), L, cpu_f32(g.data(), {dv}));
    dO = t4(dpre, H, dv);
  }
  for (const auto& blk : blocks)
    ops::attention_block_backward(maps, t4(rdq, H * maps, d), t4(rdk, KV * maps, d), t4(rdv, KV, dv), dO, &L, O, Lse,
                                  tq, tk, tv, blk);
  auto close = [&](const std::vector<float>& got, const std::vector<float>& want, const std::string& name) {
    EXPECT_TRUE(all_close(got, widen(want), 1e-5 * max_abs(widen(want)) + 1e-6, name + what));
  };
  close(ro, fo, "out");
  close(l[0], fl1, "lse (map 0)");
  if (maps == 2) {
    close(rrs, frs, "rstd");
    close(rdg, fdg, "dg_sub");
    for (int j = 0; j < 4; ++j) close(rdl[j], fdl[j], "dλ vector " + std::to_string(j));
  }
  close(rdq, fdq, "dq");
  close(rdk, fdk, "dk");
  close(rdv, fdv, "dv");
}

// Chunks of 5 rows (less than one tile), 70 (no multiple of the 64-row query tile)
// and 37; GQA ratios 1, 2 and 4.
TEST(AttentionBlocks, RingDecompositionMatchesFusedAttention) {
  std::mt19937 rng(504);
  for (const RingCase& rc : {RingCase{5, 8, 2, 2}, RingCase{70, 16, 4, 2}, RingCase{37, 8, 4, 1}})
    for (int maps : {1, 2}) check_ring(rc, maps, rng);
}

}  // namespace
