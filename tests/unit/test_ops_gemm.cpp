// matmul, linear and embedding against the float64 references in reference_ops.hpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/unit/reference_ops.hpp"

namespace {

using namespace dt;
using namespace dt::reftest;

// fp32 GEMM vs float64: each entry sums K products; with blocked/pairwise
// accumulation the rounding error stays well below 1e-5 · Σ_k |a_ik b_kj| (unit
// roundoff 6e-8, K <= 300 here), so the bound is that, taken over the whole matrix.
constexpr double kGemmRtol = 1e-5;

Vec abs_of(const Vec& x) {
  Vec a(x.size());
  for (size_t i = 0; i < x.size(); ++i) a[i] = std::fabs(x[i]);
  return a;
}

struct GemmCase {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
};

void check_matmul(const GemmCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  auto A = randn(size_t(c.M * c.K), rng), B = randn(size_t(c.K * c.N), rng);
  auto C =
      c.beta != 0.f ? randn(size_t(c.M * c.N), rng) : std::vector<float>(size_t(c.M * c.N), 123.f);
  Vec Ad = widen(A), Bd = widen(B), Cd = widen(C);
  ref::matmul(Cd.data(), Ad.data(), c.ta, Bd.data(), c.tb, c.M, c.N, c.K, c.alpha, c.beta);
  // Σ|terms| per entry, for the tolerance
  Vec Aa = abs_of(Ad), Ba = abs_of(Bd), Ca = abs_of(widen(C));
  ref::matmul(Ca.data(), Aa.data(), c.ta, Ba.data(), c.tb, c.M, c.N, c.K, std::fabs(c.alpha),
              std::fabs(c.beta));

  Tensor tA = c.ta ? cpu_f32(A.data(), {c.K, c.M}) : cpu_f32(A.data(), {c.M, c.K});
  Tensor tB = c.tb ? cpu_f32(B.data(), {c.N, c.K}) : cpu_f32(B.data(), {c.K, c.N});
  ops::matmul(cpu_f32(C.data(), {c.M, c.N}), tA, c.ta, tB, c.tb, c.alpha, c.beta);
  std::string what = "matmul M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
                     " K=" + std::to_string(c.K) + " ta=" + std::to_string(c.ta) +
                     " tb=" + std::to_string(c.tb);
  EXPECT_TRUE(all_close(C, Cd, kGemmRtol * max_abs(Ca), what));
}

TEST(Matmul, AllTransposeCombinationsMatchReference) {
  uint32_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_matmul({13, 17, 29, ta, tb, 1.f, 0.f}, seed++);
      check_matmul({5, 70, 300, ta, tb, 1.f, 0.f}, seed++);
      check_matmul({1, 1, 1, ta, tb, 1.f, 0.f}, seed++);
    }
}

TEST(Matmul, AlphaAndBetaScaleAndAccumulate) {
  uint32_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_matmul({11, 9, 33, ta, tb, 0.5f, 1.f}, seed++);
      check_matmul({11, 9, 33, ta, tb, -1.75f, 0.25f}, seed++);
      check_matmul({11, 9, 33, ta, tb, 2.f, 0.f}, seed++);  // beta 0: C's old 123s ignored
    }
}

TEST(Matmul, UsesTwoDimensionalViewOfHigherRankTensors) {
  // A (2,3,K) is the 2-D view (6,K); C (2,3,N) likewise.
  std::mt19937 rng(7);
  const int64_t K = 10, N = 4;
  auto A = randn(size_t(6 * K), rng), B = randn(size_t(K * N), rng);
  std::vector<float> C(size_t(6 * N), 123.f);
  Vec Cd(C.size()), Ca(C.size());
  Vec Ad = widen(A), Bd = widen(B);
  ref::matmul(Cd.data(), Ad.data(), false, Bd.data(), false, 6, N, K, 1.0, 0.0);
  ref::matmul(Ca.data(), abs_of(Ad).data(), false, abs_of(Bd).data(), false, 6, N, K, 1.0, 0.0);
  ops::matmul(cpu_f32(C.data(), {2, 3, N}), cpu_f32(A.data(), {2, 3, K}), false,
              cpu_f32(B.data(), {K, N}), false);
  EXPECT_TRUE(all_close(C, Cd, kGemmRtol * max_abs(Ca), "matmul 3-D views"));
}

TEST(Linear, ForwardMatchesReference) {
  std::mt19937 rng(11);
  for (auto [N, in, out] :
       {std::tuple<int64_t, int64_t, int64_t>{7, 19, 11}, {64, 96, 33}, {1, 5, 3}}) {
    auto x = randn(size_t(N * in), rng), W = randn(size_t(out * in), rng);
    std::vector<float> y(size_t(N * out), 123.f);
    Vec yd(y.size()), ya(y.size()), xd = widen(x), Wd = widen(W);
    ref::linear(yd.data(), xd.data(), Wd.data(), N, in, out);
    ref::linear(ya.data(), abs_of(xd).data(), abs_of(Wd).data(), N, in, out);
    ops::linear_forward(cpu_f32(y.data(), {N, out}), cpu_f32(x.data(), {N, in}),
                        cpu_f32(W.data(), {out, in}));
    EXPECT_TRUE(all_close(y, yd, kGemmRtol * max_abs(ya), "linear_forward"));
  }
}

// L = Σ y · R with y = x Wᵀ: dx = R W, dW = Rᵀ x; both checked by central
// differences of the float64 forward (exact for a bilinear objective up to roundoff).
// Tolerance 1e-4 · max|grad|: fp32 GEMMs over N or out terms (<= 33) vs float64.
void check_linear_backward(bool accumulate_dx, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t N = 9, in = 13, out = 7;
  auto x = randn(size_t(N * in), rng), W = randn(size_t(out * in), rng);
  auto R = randn(size_t(N * out), rng);
  Vec xd = widen(x), Wd = widen(W), Rd = widen(R), y(static_cast<size_t>(N * out));
  auto loss = [&](size_t) {
    ref::linear(y.data(), xd.data(), Wd.data(), N, in, out);
    return dot(y.data(), Rd.data(), y.size());
  };
  auto ix = pick(xd.size(), xd.size(), rng), iw = pick(Wd.size(), Wd.size(), rng);
  Vec fdx = finite_diff(xd, ix, loss), fdw = finite_diff(Wd, iw, loss);

  const float dx_pre = accumulate_dx ? 0.25f : 123.f, dw_pre = -0.5f;
  std::vector<float> dx(x.size(), dx_pre), dW(W.size(), dw_pre);
  ops::linear_backward(cpu_f32(dx.data(), {N, in}), cpu_f32(dW.data(), {out, in}),
                       cpu_f32(R.data(), {N, out}), cpu_f32(x.data(), {N, in}),
                       cpu_f32(W.data(), {out, in}), accumulate_dx);
  EXPECT_TRUE(grad_close(dx.data(), accumulate_dx ? dx_pre : 0.f, ix, fdx, 1e-4, 1e-6,
                         accumulate_dx ? "dx (+=)" : "dx (overwritten)"));
  EXPECT_TRUE(grad_close(dW.data(), dw_pre, iw, fdw, 1e-4, 1e-6, "dW (+=)"));
}

TEST(Linear, BackwardOverwritesDxAndAccumulatesDwMatchingFiniteDifferences) {
  check_linear_backward(false, 21);
}

TEST(Linear, BackwardAccumulatesDxWhenAskedMatchingFiniteDifferences) {
  check_linear_backward(true, 22);
}

TEST(Embedding, ForwardGathersRowsExactly) {
  std::mt19937 rng(31);
  const int64_t V = 23, D = 12, N = 40;
  auto E = randn(size_t(V * D), rng);
  std::vector<int32_t> tok(N);
  for (auto& t : tok) t = int32_t(rng() % V);
  std::vector<float> out(size_t(N * D), 123.f);
  Vec od(out.size()), Ed = widen(E);
  ref::embedding(od.data(), tok.data(), Ed.data(), N, D);
  ops::embedding_forward(cpu_f32(out.data(), {N, D}), cpu_i32(tok.data(), {N}),
                         cpu_f32(E.data(), {V, D}));
  EXPECT_TRUE(all_close(out, od, 0.0, "embedding_forward (a copy: exact)"));
}

TEST(Embedding, BackwardScatterAddsRepeatedTokensMatchingFiniteDifferences) {
  std::mt19937 rng(32);
  const int64_t V = 23, D = 6, N = 50;  // N > V: tokens repeat; some rows are never used
  auto E = randn(size_t(V * D), rng), R = randn(size_t(N * D), rng);
  std::vector<int32_t> tok(N);
  for (auto& t : tok) t = int32_t(rng() % (V - 3));  // rows V−3.. stay untouched
  Vec Ed = widen(E), Rd = widen(R), od(static_cast<size_t>(N * D));
  auto loss = [&](size_t) {
    ref::embedding(od.data(), tok.data(), Ed.data(), N, D);
    return dot(od.data(), Rd.data(), od.size());
  };
  auto idx = pick(Ed.size(), Ed.size(), rng);
  Vec fd = finite_diff(Ed, idx, loss);
  const float pre = 0.25f;
  std::vector<float> dE(E.size(), pre);
  ops::embedding_backward(cpu_f32(dE.data(), {V, D}), cpu_i32(tok.data(), {N}),
                          cpu_f32(R.data(), {N, D}));
  // A sum of at most N fp32 values per entry: 1e-5 of the gradient scale.
  EXPECT_TRUE(grad_close(dE.data(), pre, idx, fd, 1e-5, 1e-6, "dE (+=)"));
  for (int64_t r = V - 3; r < V; ++r)
    for (int64_t c = 0; c < D; ++c) EXPECT_EQ(dE[size_t(r * D + c)], pre) << "unused row " << r;
}

}  // namespace
