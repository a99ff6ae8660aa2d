// RMSNorm, SwiGLU and RoPE against the float64 references in reference_ops.hpp;
// backwards against central differences of those references (L = Σ out · R).
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

// ---- RMSNorm ------------------------------------------------------------------------
// Forward: one fp32 mean of C squares (C <= 96) then elementwise products; relative
// error a few units of fp32 roundoff (6e-8), so 1e-5 of the output scale is generous.
// Backward: also reductions over C (dx) and N (dg), 1e-4 of the gradient scale.
TEST(RmsNorm, ForwardAndRstdMatchReference) {
  std::mt19937 rng(41);
  for (auto [N, C] : {std::pair<int64_t, int64_t>{37, 64}, {5, 5}, {1, 96}}) {
    const float eps = 1e-5f;
    auto x = randn(size_t(N * C), rng), g = randn(size_t(C), rng, 0.5, 1.0);
    std::vector<float> out(x.size(), 123.f), rstd(size_t(N), 123.f);
    Vec od(out.size()), rd(rstd.size()), xd = widen(x), gd = widen(g);
    ref::rmsnorm(od.data(), rd.data(), xd.data(), gd.data(), N, C, eps);
    ops::rmsnorm_forward(cpu_f32(out.data(), {N, C}), cpu_f32(rstd.data(), {N}),
                         cpu_f32(x.data(), {N, C}), cpu_f32(g.data(), {C}), eps);
    EXPECT_TRUE(all_close(out, od, 1e-5 * max_abs(od), "rmsnorm out C=" + std::to_string(C)));
    EXPECT_TRUE(all_close(rstd, rd, 1e-5 * max_abs(rd), "rmsnorm rstd C=" + std::to_string(C)));
  }
}

TEST(RmsNorm, EpsilonEntersInsideTheRoot) {
  // Rows of tiny values: mean(x²) ~ 1e-6 is comparable to eps, so eps placement shows.
  std::mt19937 rng(42);
  const int64_t N = 4, C = 16;
  const float eps = 1e-5f;
  auto x = randn(size_t(N * C), rng, 1e-3), g = randn(size_t(C), rng, 0.5, 1.0);
  std::vector<float> out(x.size(), 123.f), rstd(size_t(N), 123.f);
  Vec od(out.size()), rd(rstd.size()), xd = widen(x), gd = widen(g);
  ref::rmsnorm(od.data(), rd.data(), xd.data(), gd.data(), N, C, eps);
  ops::rmsnorm_forward(cpu_f32(out.data(), {N, C}), cpu_f32(rstd.data(), {N}),
                       cpu_f32(x.data(), {N, C}), cpu_f32(g.data(), {C}), eps);
  EXPECT_TRUE(all_close(out, od, 1e-5 * max_abs(od), "rmsnorm out, small x"));
  EXPECT_TRUE(all_close(rstd, rd, 1e-5 * max_abs(rd), "rmsnorm rstd, small x"));
}

TEST(RmsNorm, BackwardAccumulatesMatchingFiniteDifferences) {
  std::mt19937 rng(43);
  const int64_t N = 11, C = 24;
  const float eps = 1e-5f;
  auto x = randn(size_t(N * C), rng), g = randn(size_t(C), rng, 0.5, 1.0);
  auto R = randn(size_t(N * C), rng);
  Vec xd = widen(x), gd = widen(g), Rd = widen(R), od(x.size());
  // x[n, c] only reaches row n; g reaches every row.
  auto row_loss = [&](size_t i) {
    int64_t n = int64_t(i) / C;
    ref::rmsnorm(od.data(), nullptr, xd.data() + n * C, gd.data(), 1, C, eps);
    return dot(od.data(), Rd.data() + n * C, size_t(C));
  };
  auto full_loss = [&](size_t) {
    ref::rmsnorm(od.data(), nullptr, xd.data(), gd.data(), N, C, eps);
    return dot(od.data(), Rd.data(), od.size());
  };
  auto ix = pick(xd.size(), xd.size(), rng), ig = pick(gd.size(), gd.size(), rng);
  Vec fdx = finite_diff(xd, ix, row_loss), fdg = finite_diff(gd, ig, full_loss);

  std::vector<float> out(x.size()), rstd(static_cast<size_t>(N));
  ops::rmsnorm_forward(cpu_f32(out.data(), {N, C}), cpu_f32(rstd.data(), {N}),
                       cpu_f32(x.data(), {N, C}), cpu_f32(g.data(), {C}), eps);
  const float dx_pre = 0.25f, dg_pre = -0.75f;
  std::vector<float> dx(x.size(), dx_pre), dg(g.size(), dg_pre);
  ops::rmsnorm_backward(cpu_f32(dx.data(), {N, C}), cpu_f32(dg.data(), {C}),
                        cpu_f32(R.data(), {N, C}), cpu_f32(x.data(), {N, C}),
                        cpu_f32(g.data(), {C}), cpu_f32(rstd.data(), {N}));
  EXPECT_TRUE(grad_close(dx.data(), dx_pre, ix, fdx, 1e-4, 1e-6, "rmsnorm dx (+=)"));
  EXPECT_TRUE(grad_close(dg.data(), dg_pre, ig, fdg, 1e-4, 1e-6, "rmsnorm dg (+=)"));
}

// ---- SwiGLU ---------------------------------------------------------------------------
// Elementwise: fp32 exp and two products, a few roundoffs; 1e-5 of the scale for the
// forward and the backward. a ~ N(0, 3) reaches both saturated ends of the sigmoid.
TEST(SwiGlu, ForwardMatchesReference) {
  std::mt19937 rng(51);
  const int64_t N = 13, F = 29;
  auto a = randn(size_t(N * F), rng, 3.0), b = randn(size_t(N * F), rng);
  std::vector<float> out(a.size(), 123.f);
  Vec od(out.size()), ad = widen(a), bd = widen(b);
  ref::swiglu(od.data(), ad.data(), bd.data(), N * F);
  ops::swiglu_forward(cpu_f32(out.data(), {N, F}), cpu_f32(a.data(), {N, F}),
                      cpu_f32(b.data(), {N, F}));
  EXPECT_TRUE(all_close(out, od, 1e-5 * max_abs(od), "swiglu out"));
}

TEST(SwiGlu, BackwardOverwritesMatchingFiniteDifferences) {
  std::mt19937 rng(52);
  const int64_t N = 13, F = 29;
  auto a = randn(size_t(N * F), rng, 3.0), b = randn(size_t(N * F), rng);
  auto R = randn(size_t(N * F), rng);
  Vec ad = widen(a), bd = widen(b), Rd = widen(R);
  auto elem_loss = [&](size_t i) { return ref::silu(ad[i]) * bd[i] * Rd[i]; };
  auto idx = pick(ad.size(), ad.size(), rng);
  Vec fda = finite_diff(ad, idx, elem_loss), fdb = finite_diff(bd, idx, elem_loss);
  std::vector<float> da(a.size(), 123.f), db(b.size(), 123.f);
  ops::swiglu_backward(cpu_f32(da.data(), {N, F}), cpu_f32(db.data(), {N, F}),
                       cpu_f32(R.data(), {N, F}), cpu_f32(a.data(), {N, F}),
                       cpu_f32(b.data(), {N, F}));
  EXPECT_TRUE(grad_close(da.data(), 0.f, idx, fda, 1e-5, 1e-7, "swiglu da (overwritten)"));
  EXPECT_TRUE(grad_close(db.data(), 0.f, idx, fdb, 1e-5, 1e-7, "swiglu db (overwritten)"));
}

// ---- RoPE -----------------------------------------------------------------------------
// The table's column layout is the kernel's business; the tests check rope_table and
// rope_forward together against the rotation by (pos0 + t) · θ^(−2i/d). With cos/sin
// computed from float64 angles and stored in fp32, each output is a 2-term fp32 sum:
// error ~3 roundoffs of |x|, so 1e-5 of the scale holds even at pos0 = 4096, where an
// fp32 angle (error ~pos · 6e-8 rad) would not.
struct RopeCase {
  int64_t B, T, nh, d;
  double theta;
  int64_t pos0;
};

void check_rope_forward(const RopeCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t n = size_t(c.B * c.T * c.nh * c.d);
  auto x = randn(n, rng);
  Vec xd = widen(x);
  ref::rope(xd.data(), c.B, c.T, c.nh, c.d, c.theta, c.pos0);
  std::vector<float> table(size_t(c.T * c.d), 123.f);
  ops::rope_table(cpu_f32(table.data(), {c.T, c.d}), c.theta, c.pos0);
  ops::rope_forward(cpu_f32(x.data(), {c.B, c.T, c.nh, c.d}), cpu_f32(table.data(), {c.T, c.d}));
  EXPECT_TRUE(all_close(x, xd, 1e-5 * max_abs(xd),
                        "rope T=" + std::to_string(c.T) + " d=" + std::to_string(c.d) + " theta=" +
                            std::to_string(c.theta) + " pos0=" + std::to_string(c.pos0)));
}

TEST(Rope, ForwardMatchesReferenceForBothThetasAndOffsets) {
  uint32_t seed = 61;
  for (double theta : {10000.0, 640000.0})
    for (int64_t pos0 : {int64_t(0), int64_t(5), int64_t(4096)}) {
      check_rope_forward({2, 7, 3, 4, theta, pos0}, seed++);
      check_rope_forward({2, 37, 2, 8, theta, pos0}, seed++);
      check_rope_forward({1, 130, 4, 16, theta, pos0}, seed++);
    }
}

TEST(Rope, PositionZeroIsIdentity) {
  std::mt19937 rng(62);
  const int64_t B = 2, T = 1, nh = 3, d = 8;
  auto x = randn(size_t(B * T * nh * d), rng);
  auto x0 = x;
  std::vector<float> table(size_t(T * d), 123.f);
  ops::rope_table(cpu_f32(table.data(), {T, d}), 10000.0, 0);
  ops::rope_forward(cpu_f32(x.data(), {B, T, nh, d}), cpu_f32(table.data(), {T, d}));
  EXPECT_TRUE(all_close(x, widen(x0), 1e-7 * max_abs(widen(x0)), "rope at position 0"));
}

// rope_backward is the transpose of the rotation: with L = Σ rope(x) · R, dL/dx is R
// rotated back. Elementwise 2-term sums as in the forward: 1e-5 of the scale.
TEST(Rope, BackwardIsTransposeMatchingFiniteDifferences) {
  std::mt19937 rng(63);
  for (auto [theta, pos0] : {std::pair<double, int64_t>{10000.0, 0}, {640000.0, 17}}) {
    const int64_t B = 2, T = 9, nh = 3, d = 8;
    const size_t n = size_t(B * T * nh * d);
    auto x = randn(n, rng), R = randn(n, rng);
    Vec xd = widen(x), Rd = widen(R), rot(static_cast<size_t>(d));
    // x[b, t, h, :] only reaches its own head row.
    auto row_loss = [&](size_t i) {
      size_t row = i / size_t(d);
      int64_t t = int64_t(row / size_t(nh)) % T;
      std::copy(xd.begin() + long(row * d), xd.begin() + long((row + 1) * d), rot.begin());
      ref::rope(rot.data(), 1, 1, 1, d, theta, pos0 + t);
      return dot(rot.data(), Rd.data() + row * size_t(d), size_t(d));
    };
    auto idx = pick(n, n, rng);
    Vec fd = finite_diff(xd, idx, row_loss);
    std::vector<float> table(size_t(T * d));
    ops::rope_table(cpu_f32(table.data(), {T, d}), theta, pos0);
    std::vector<float> dx = R;  // rotated in place
    ops::rope_backward(cpu_f32(dx.data(), {B, T, nh, d}), cpu_f32(table.data(), {T, d}));
    EXPECT_TRUE(grad_close(dx.data(), 0.f, idx, fd, 1e-5, 1e-7,
                           "rope_backward theta=" + std::to_string(theta)));
  }
}

}  // namespace
