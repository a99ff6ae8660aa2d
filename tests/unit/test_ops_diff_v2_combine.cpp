// DIFF V2's combine op (kernels/cpu/diff_v2_combine.cpp) against float64 loops
// written from DESIGN §2 (out_h = o_2h − σ(λ_h)·o_2h+1) and its backward
// against finite differences of a float64 scalar loss.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ops.hpp"

namespace dt {
namespace {

constexpr int64_t kN = 7, kH = 3, kD = 6;  // tokens, output heads, head size

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The spec in float64: out (N,H,D) from o (N,2H,D) and lam (N,H).
std::vector<double> combine_ref(const std::vector<double>& o, const std::vector<double>& lam) {
  std::vector<double> out(size_t(kN * kH * kD));
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t c = 0; c < kD; ++c)
        out[size_t((n * kH + h) * kD + c)] = o[size_t((n * 2 * kH + 2 * h) * kD + c)] -
                                             sigmoid(lam[size_t(n * kH + h)]) *
                                                 o[size_t((n * 2 * kH + 2 * h + 1) * kD + c)];
  return out;
}

std::vector<float> to_f32(const std::vector<double>& x) { return {x.begin(), x.end()}; }

struct Inputs {
  std::vector<double> o, lam, w;  // w: the weights of the scalar loss Σ w·out
};

Inputs random_inputs() {
  std::mt19937 rng(11);
  std::normal_distribution<double> n01(0, 1);
  Inputs in;
  for (int64_t i = 0; i < kN * 2 * kH * kD; ++i) in.o.push_back(n01(rng));
  for (int64_t i = 0; i < kN * kH; ++i) in.lam.push_back(2.0 * n01(rng));  // σ spread over (0, 1)
  for (int64_t i = 0; i < kN * kH * kD; ++i) in.w.push_back(n01(rng));
  return in;
}

TEST(DiffV2Combine, ForwardMatchesFloat64Spec) {
  const Inputs in = random_inputs();
  std::vector<float> o = to_f32(in.o), lam = to_f32(in.lam), out(size_t(kN * kH * kD));
  ops::diff_v2_combine_forward(cpu_f32(out.data(), {1, kN, kH, kD}), cpu_f32(o.data(), {1, kN, 2 * kH, kD}),
                               cpu_f32(lam.data(), {kN, kH}));
  const std::vector<double> want = combine_ref(in.o, in.lam);
  // fp32 inputs of O(1): one product and one difference, a few ulps.
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-5) << i;
}

TEST(DiffV2Combine, BackwardMatchesFiniteDifferences) {
  const Inputs in = random_inputs();
  std::vector<float> o = to_f32(in.o), lam = to_f32(in.lam), dout = to_f32(in.w);
  std::vector<float> d_o(o.size(), 99.f), dlam(lam.size(), 99.f);  // overwritten, not accumulated
  ops::diff_v2_combine_backward(cpu_f32(d_o.data(), {1, kN, 2 * kH, kD}), cpu_f32(dlam.data(), {kN, kH}),
                                cpu_f32(dout.data(), {1, kN, kH, kD}), cpu_f32(o.data(), {1, kN, 2 * kH, kD}),
                                cpu_f32(lam.data(), {kN, kH}));
  // loss = Σ w·out in float64; central differences with h 1e-5 have O(h²) ≈ 1e-10
  // truncation, so 1e-5 absolute only allows the fp32 rounding of the op.
  auto loss = [&](const std::vector<double>& ov, const std::vector<double>& lv) {
    const std::vector<double> out = combine_ref(ov, lv);
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += in.w[i] * out[i];
    return s;
  };
  const double h = 1e-5;
  for (size_t i = 0; i < in.o.size(); ++i) {
    std::vector<double> p = in.o, m = in.o;
    p[i] += h, m[i] -= h;
    EXPECT_NEAR(d_o[i], (loss(p, in.lam) - loss(m, in.lam)) / (2 * h), 1e-5) << "d_o " << i;
  }
  for (size_t i = 0; i < in.lam.size(); ++i) {
    std::vector<double> p = in.lam, m = in.lam;
    p[i] += h, m[i] -= h;
    EXPECT_NEAR(dlam[i], (loss(in.o, p) - loss(in.o, m)) / (2 * h), 1e-5) << "dlam " << i;
  }
}

}  // namespace
}  // namespace dt
