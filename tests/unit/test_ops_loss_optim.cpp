// cross_entropy, adamw, sum_squares and scale against float64 references.
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

// ---- cross-entropy --------------------------------------------------------------------
struct CeResult {
  double sum;
  std::vector<float> losses, grad;  // grad: the overwritten logits
};

CeResult run_ce(std::vector<float> logits, std::vector<int32_t> targets, int64_t V,
                float grad_scale) {
  const int64_t N = int64_t(targets.size());
  CeResult r;
  r.losses.assign(size_t(N), 123.f);
  r.sum = ops::cross_entropy(cpu_f32(logits.data(), {N, V}), cpu_i32(targets.data(), {N}),
                             cpu_f32(r.losses.data(), {N}), grad_scale);
  r.grad = std::move(logits);
  return r;
}

// Per-row loss lse − logit[target] in fp32: the absolute error is a few roundoffs
// (6e-8 each) of the logit magnitude, so the per-row bound 4e-6 · (1 + max|logit|) is
// generous, and the sum's is N times that. Gradient softmax − onehot: exp of
// (logit − lse), whose absolute error is ~|logit| · 6e-8, so 2e-5 of the gradient
// scale for |logits| ~ 6 and 1e-4 for |logits| ~ 100.
void check_ce(const std::vector<float>& logits, const std::vector<int32_t>& targets, int64_t V,
              float grad_scale, double grad_rtol, const std::string& what) {
  const int64_t N = int64_t(targets.size());
  Vec ld = widen(logits), want(static_cast<size_t>(N));
  double want_sum = 0;
  for (int64_t n = 0; n < N; ++n)
    want_sum += want[size_t(n)] = ref::cross_entropy_row(ld.data() + n * V, V, targets[size_t(n)]);
  const double row_tol = 4e-6 * (1.0 + max_abs(ld));

  CeResult r = run_ce(logits, targets, V, grad_scale);
  EXPECT_NEAR(r.sum, want_sum, row_tol * double(N)) << what << ": sum of losses";
  EXPECT_TRUE(all_close(r.losses, want, row_tol, what + ": per-row losses"));

  // d (grad_scale · Σ loss) / d logits; logits of row n reach only loss n.
  auto row_loss = [&](size_t i) {
    int64_t n = int64_t(i) / V;
    return double(grad_scale) * ref::cross_entropy_row(ld.data() + n * V, V, targets[size_t(n)]);
  };
  std::mt19937 rng(5);
  auto idx = pick(ld.size(), ld.size(), rng);
  Vec fd = finite_diff(ld, idx, row_loss, 1e-6);
  EXPECT_TRUE(grad_close(r.grad.data(), 0.f, idx, fd, grad_rtol, 1e-9, what + ": dlogits"));
}

TEST(CrossEntropy, LossSumAndScaledGradientMatchReference) {
  std::mt19937 rng(71);
  const int64_t N = 9, V = 37;
  auto logits = randn(size_t(N * V), rng, 2.0);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng() % V);
  check_ce(logits, targets, V, 1.f / float(N), 2e-5, "grad_scale 1/N");
  check_ce(logits, targets, V, 1.f, 2e-5, "grad_scale 1");
}

TEST(CrossEntropy, IgnoredTargetsGiveZeroLossAndZeroGradientRows) {
  std::mt19937 rng(72);
  const int64_t N = 8, V = 19;
  auto logits = randn(size_t(N * V), rng, 2.0);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng() % V);
  targets[1] = targets[4] = targets[7] = -1;
  check_ce(logits, targets, V, 0.2f, 2e-5, "with ignored rows");
  CeResult r = run_ce(logits, targets, V, 0.2f);
  for (int64_t n : {1, 4, 7}) {
    EXPECT_EQ(r.losses[size_t(n)], 0.f) << "row " << n;
    for (int64_t j = 0; j < V; ++j) EXPECT_EQ(r.grad[size_t(n * V + j)], 0.f) << "row " << n;
  }
}

TEST(CrossEntropy, AllTargetsIgnoredGivesZero) {
  std::mt19937 rng(73);
  const int64_t N = 3, V = 5;
  auto logits = randn(size_t(N * V), rng);
  CeResult r = run_ce(logits, std::vector<int32_t>(N, -1), V, 1.f);
  EXPECT_EQ(r.sum, 0.0);
  for (float g : r.grad) EXPECT_EQ(g, 0.f);
}

TEST(CrossEntropy, LargeLogitsDoNotOverflow) {
  // Logits around 80 with spread 8: many exceed log(FLT_MAX) ≈ 88.7, so an unshifted
  // fp32 exp would overflow; some rows also have a very negative logit.
  std::mt19937 rng(74);
  const int64_t N = 6, V = 41;
  auto logits = randn(size_t(N * V), rng, 8.0, 80.0);
  for (int64_t n = 0; n < N; n += 2) logits[size_t(n * V + 3)] = -90.f;
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng() % V);
  targets[0] = 3;  // the −90 logit: loss ~170
  check_ce(logits, targets, V, 1.f / float(N), 1e-4, "logits ~80");
  CeResult r = run_ce(logits, targets, V, 1.f / float(N));
  EXPECT_TRUE(std::isfinite(r.sum));
  for (float g : r.grad) ASSERT_TRUE(std::isfinite(g));
}

TEST(CrossEntropy, ZeroGradScaleLeavesLogitsUntouched) {
  std::mt19937 rng(75);
  const int64_t N = 4, V = 11;
  auto logits = randn(size_t(N * V), rng);
  std::vector<int32_t> targets{1, 0, -1, 10};
  CeResult r = run_ce(logits, targets, V, 0.f);
  EXPECT_EQ(r.grad, logits);
  double want = 0;
  Vec ld = widen(logits);
  for (int64_t n = 0; n < N; ++n) want += ref::cross_entropy_row(ld.data() + n * V, V, targets[n]);
  EXPECT_NEAR(r.sum, want, 1e-5 * double(N));
}

// ---- AdamW ------------------------------------------------------------------------------
// Several steps in lockstep with the float64 reference (same fp32 gradients each step).
// m, v: a few roundoffs per step, 1e-6 of their scale. Parameters (|p| < ~4): each
// step rounds p to fp32 (3e-8 · 4) and the update lr · O(1) carries a few roundoffs, so
// after 6 steps an absolute 2e-6 holds; an error in the update formula (bias
// correction, decay form, grad_scale) moves p by O(lr) = 1e-2 or more.
void check_adamw(float wd, float grad_scale, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t n = 257;
  auto p = randn(size_t(n), rng);
  std::vector<float> m(size_t(n), 0.f), v(size_t(n), 0.f);
  Vec pd = widen(p), md(size_t(n), 0.0), vd(size_t(n), 0.0);
  ops::AdamWParams hp{0.05f, 0.9f, 0.95f, 1e-8f, wd, 0, grad_scale};
  for (int64_t step = 1; step <= 6; ++step) {
    auto g = randn(size_t(n), rng, step == 3 ? 10.0 : 1.0);  // one large-gradient step
    Vec gd = widen(g);
    hp.step = step;
    ref::adamw(pd.data(), gd.data(), md.data(), vd.data(), n, hp.lr, hp.beta1, hp.beta2, hp.eps,
               hp.weight_decay, step, hp.grad_scale);
    ops::adamw(cpu_f32(p.data(), {n}), cpu_f32(g.data(), {n}), cpu_f32(m.data(), {n}),
               cpu_f32(v.data(), {n}), hp);
    std::string what = "step " + std::to_string(step) + " wd " + std::to_string(wd) +
                       " grad_scale " + std::to_string(grad_scale);
    EXPECT_TRUE(all_close(m, md, 1e-6 * max_abs(md), what + ": m"));
    EXPECT_TRUE(all_close(v, vd, 1e-6 * max_abs(vd), what + ": v"));
    EXPECT_TRUE(all_close(p, pd, 2e-6, what + ": param"));
  }
}

TEST(AdamW, StepsMatchReferenceWithoutWeightDecay) { check_adamw(0.f, 1.f, 81); }
TEST(AdamW, StepsMatchReferenceWithDecoupledWeightDecay) { check_adamw(0.1f, 1.f, 82); }
TEST(AdamW, GradScaleMultipliesGradientFirst) { check_adamw(0.1f, 0.37f, 83); }

TEST(AdamW, FirstStepMovesEachParameterByLearningRate) {
  // Step 1 with zero moments: m̂ = g, v̂ = g², so the update is lr · sign(g) (eps aside).
  const int64_t n = 4;
  std::vector<float> p{1.f, -2.f, 0.5f, 3.f}, g{0.3f, -4.f, 2e-3f, -1.f};
  std::vector<float> m(n, 0.f), v(n, 0.f);
  ops::AdamWParams hp{0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 1.f};
  ops::adamw(cpu_f32(p.data(), {n}), cpu_f32(g.data(), {n}), cpu_f32(m.data(), {n}),
             cpu_f32(v.data(), {n}), hp);
  Vec want{0.99, -1.99, 0.49, 3.01};
  EXPECT_TRUE(all_close(p, want, 2e-6, "first AdamW step"));
}

// ---- sum_squares, scale --------------------------------------------------------------------
TEST(SumSquares, MatchesFloat64SumOverLargeTensor) {
  std::mt19937 rng(91);
  const int64_t n = 100003;  // no multiple of any vector width or block
  auto x = randn(size_t(n), rng, 3.0);
  double want = 0;
  for (float e : x) want += double(e) * double(e);
  // Accumulated in double; each square may be rounded to fp32 first (6e-8 relative).
  EXPECT_NEAR(ops::sum_squares(cpu_f32(x.data(), {n})), want, 1e-7 * want);
  std::vector<float> one{-3.f};
  EXPECT_NEAR(ops::sum_squares(cpu_f32(one.data(), {1})), 9.0, 1e-12);
}

// The training step's forms: the sums added to an f64 accumulator instead of
// returned (the returned value is then 0), bit for bit the same sum.
TEST(DeviceAccumulators, LossAndSquaresAddToTheAccumulatorExactlyAsReturned) {
  std::mt19937 rng(93);
  const int64_t N = 37, V = 29;
  const auto logits = randn(size_t(N * V), rng, 2.0);
  std::vector<int32_t> targets(static_cast<size_t>(N));
  for (auto& t : targets) t = int32_t(rng() % V);
  targets[3] = -1;
  std::vector<float> z1 = logits, z2 = logits, losses(static_cast<size_t>(N));
  const double want = ops::cross_entropy(cpu_f32(z1.data(), {N, V}), cpu_i32(targets.data(), {N}),
                                         cpu_f32(losses.data(), {N}), 0.5f);
  double acc = 1.25;  // added to, not overwritten
  const Tensor acc_t(&acc, DType::F64, {1});
  EXPECT_EQ(ops::cross_entropy(cpu_f32(z2.data(), {N, V}), cpu_i32(targets.data(), {N}),
                               cpu_f32(losses.data(), {N}), 0.5f, acc_t),
            0.0);
  EXPECT_EQ(acc, 1.25 + want);
  EXPECT_EQ(z1, z2) << "the gradient does not depend on where the loss goes";

  const auto x = randn(1001, rng);
  const double sq = ops::sum_squares(cpu_f32(const_cast<float*>(x.data()), {1001}));
  acc = 0;
  ops::sum_squares(cpu_f32(const_cast<float*>(x.data()), {1001}), acc_t);
  ops::sum_squares(cpu_f32(const_cast<float*>(x.data()), {1001}), acc_t);
  EXPECT_EQ(acc, sq + sq);
}

// The clipping factor on the device equals the host formula it replaced:
// clip/‖g‖ when clipping is on and ‖g‖ exceeds it, else 1; AdamW multiplies the
// gradient by it exactly as by grad_scale.
TEST(DeviceAccumulators, ClipFactorAndAdamWWithItMatchTheHostFormula) {
  float factor = 0;
  double norm_sq = 16.0;  // ‖g‖ = 4
  const Tensor f(&factor, DType::F32, {1}), n2(&norm_sq, DType::F64, {1});
  ops::clip_factor(f, n2, 1.0);
  EXPECT_EQ(factor, float(1.0 / 4.0));
  ops::clip_factor(f, n2, 8.0);
  EXPECT_EQ(factor, 1.f);
  ops::clip_factor(f, n2, 0.0);
  EXPECT_EQ(factor, 1.f) << "max_norm 0 switches clipping off";

  std::vector<float> p1{1.f, -2.f, 0.5f}, p2 = p1, g{0.3f, -4.f, 2e-3f}, m1(3, 0.f), v1(3, 0.f), m2 = m1, v2 = v1;
  float clip = 0.25f;
  ops::adamw(cpu_f32(p1.data(), {3}), cpu_f32(g.data(), {3}), cpu_f32(m1.data(), {3}), cpu_f32(v1.data(), {3}),
             {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 2, 0.25f});
  ops::adamw(cpu_f32(p2.data(), {3}), cpu_f32(g.data(), {3}), cpu_f32(m2.data(), {3}), cpu_f32(v2.data(), {3}),
             {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 2, 1.f, Tensor(&clip, DType::F32, {1})});
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(m1, m2);
}

TEST(Scale, MultipliesEveryElementInPlace) {
  std::mt19937 rng(92);
  const int64_t n = 1037;
  auto x = randn(size_t(n), rng);
  Vec want = widen(x);
  for (auto& e : want) e *= 0.37;
  ops::scale(cpu_f32(x.data(), {n}), 0.37f);
  // One fp32 product each, and 0.37f differs from 0.37 by < 6e-8 relative.
  EXPECT_TRUE(all_close(x, want, 2e-7 * max_abs(want), "scale"));
}

}  // namespace
