// Next-token sampling: greedy, temperature, top-k and nucleus (top-p) on
// hand-made distributions, and reproducibility from a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "eval/generate/generate.hpp"

namespace dt {
namespace {

// Logits whose softmax (temperature 1) is exactly-ish the given probabilities.
std::vector<float> logits_of(const std::vector<double>& p) {
  std::vector<float> z;
  for (double x : p) z.push_back(float(std::log(x)));
  return z;
}

// Token probabilities, deliberately not sorted by id: 0.10 0.40 0.05 0.25 0.20.
const std::vector<double> kProbs = {0.10, 0.40, 0.05, 0.25, 0.20};

TEST(Sampling, TemperatureZeroIsArgmaxAndUsesNoRandomness) {
  const std::vector<float> z = logits_of(kProbs);
  SamplingOptions s;
  s.temperature = 0;
  std::mt19937_64 rng(1), untouched(1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sample_token(z, s, rng), 1);
  EXPECT_EQ(rng(), untouched());
  EXPECT_EQ(sampling_probs(z, s), (std::vector<double>{0, 1, 0, 0, 0}));
  // Equal maxima: the lower id.
  EXPECT_EQ(argmax_token(std::vector<float>{0.f, 2.f, -1.f, 2.f}), 1);
}

TEST(Sampling, TopKOfOneEqualsGreedyForAnyTemperatureAndSeed) {
  std::mt19937 gen(9);
  std::normal_distribution<float> n01(0.f, 3.f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> z(37);
    for (float& x : z) x = n01(gen);
    SamplingOptions s;
    s.top_k = 1;
    s.temperature = 0.3 + trial * 0.1;
    std::mt19937_64 rng{uint64_t(trial)};
    EXPECT_EQ(sample_token(z, s, rng), argmax_token(z)) << "trial " << trial;
  }
}

TEST(Sampling, TopKKeepsTheKMostLikelyRenormalised) {
  SamplingOptions s;
  s.top_k = 2;  // ids 1 (0.40) and 3 (0.25)
  const std::vector<double> p = sampling_probs(logits_of(kProbs), s);
  // Softmax of float(log p) in double: exact to float rounding of the logits.
  EXPECT_NEAR(p[1], 0.40 / 0.65, 1e-6);
  EXPECT_NEAR(p[3], 0.25 / 0.65, 1e-6);
  EXPECT_EQ(p[0], 0.0);
  EXPECT_EQ(p[2], 0.0);
  EXPECT_EQ(p[4], 0.0);
}

TEST(Sampling, TopPKeepsTheSmallestSetWhoseProbabilityReachesP) {
  // Sorted: 0.40 (id 1), 0.25 (id 3), 0.20 (id 4), 0.10 (id 0), 0.05 (id 2);
  // prefix masses 0.40, 0.65, 0.85, 0.95, 1.00. Thresholds sit between them,
  // away from float rounding of the masses (~1e-7).
  struct Case {
    double p;
    std::vector<int> kept;
  };
  for (const Case& c : {Case{0.30, {1}}, Case{0.41, {1, 3}}, Case{0.64, {1, 3}}, Case{0.66, {1, 3, 4}},
                        Case{0.90, {1, 3, 4, 0}}, Case{0.96, {1, 3, 4, 0, 2}}}) {
    SamplingOptions s;
    s.top_p = c.p;
    const std::vector<double> p = sampling_probs(logits_of(kProbs), s);
    double kept_mass = 0;
    for (int id : c.kept) kept_mass += kProbs[size_t(id)];
    for (int id = 0; id < 5; ++id) {
      const bool kept = std::find(c.kept.begin(), c.kept.end(), id) != c.kept.end();
      if (kept) EXPECT_NEAR(p[size_t(id)], kProbs[size_t(id)] / kept_mass, 1e-6) << "p=" << c.p << " id " << id;
      else EXPECT_EQ(p[size_t(id)], 0.0) << "p=" << c.p << " id " << id;
    }
    // Draws come from the kept set only.
    std::mt19937_64 rng(7);
    for (int i = 0; i < 400; ++i) {
      const int t = sample_token(logits_of(kProbs), s, rng);
      EXPECT_NE(std::find(c.kept.begin(), c.kept.end(), t), c.kept.end()) << "p=" << c.p << " drew " << t;
    }
  }
}

TEST(Sampling, TopPAppliesAfterTopKAndTemperature) {
  // Temperature 0.5 squares the odds: 0.16 : 0.0625 : 0.04 : 0.01 : 0.0025 (÷ 0.275).
  SamplingOptions s;
  s.temperature = 0.5;
  s.top_k = 3;   // ids 1, 3, 4 → 0.16, 0.0625, 0.04 (÷ 0.2625): 0.610, 0.238, 0.152
  s.top_p = 0.8; // 0.610 < 0.8 <= 0.848: ids 1 and 3
  const std::vector<double> p = sampling_probs(logits_of(kProbs), s);
  EXPECT_NEAR(p[1], 0.16 / 0.2225, 1e-6);
  EXPECT_NEAR(p[3], 0.0625 / 0.2225, 1e-6);
  EXPECT_EQ(p[4], 0.0);
}

TEST(Sampling, TemperatureSamplingIsReproducibleForASeedAndFollowsTheDistribution) {
  const std::vector<float> z = logits_of(kProbs);
  SamplingOptions s;  // temperature 1
  auto draw = [&](uint64_t seed, int n) {
    std::mt19937_64 rng(seed);
    std::vector<int> out;
    for (int i = 0; i < n; ++i) out.push_back(sample_token(z, s, rng));
    return out;
  };
  EXPECT_EQ(draw(42, 200), draw(42, 200));
  EXPECT_NE(draw(42, 200), draw(43, 200));
  // 20000 draws: each frequency within 5 standard deviations (sd <= 0.0035).
  const std::vector<int> many = draw(1, 20000);
  for (int id = 0; id < 5; ++id) {
    const double f = double(std::count(many.begin(), many.end(), id)) / many.size();
    EXPECT_NEAR(f, kProbs[size_t(id)], 0.018) << "id " << id;
  }
}

TEST(Sampling, OutOfRangeOptionsAreErrors) {
  const std::vector<float> z = logits_of(kProbs);
  for (SamplingOptions s : {SamplingOptions{-1.0, 0, 1.0}, SamplingOptions{1.0, -2, 1.0},
                            SamplingOptions{1.0, 0, 0.0}, SamplingOptions{1.0, 0, 1.5},
                            SamplingOptions{std::nan(""), 0, 1.0}}) {
    std::mt19937_64 rng(0);
    EXPECT_THROW(sample_token(z, s, rng), Error);
  }
}

}  // namespace
}  // namespace dt
