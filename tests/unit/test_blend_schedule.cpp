// The blend schedule: which dataset each global sample comes from, a pure
// function of (weights, g) built by the largest-deficit rule (data/blend_schedule.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/blend_schedule.hpp"

namespace {

constexpr int64_t L = dt::BlendSchedule::kPeriod;

// Samples of each dataset among global samples [from, from + count).
std::vector<int64_t> counts(const dt::BlendSchedule& s, int64_t from, int64_t count) {
  std::vector<int64_t> c(s.num_datasets(), 0);
  for (int64_t g = from; g < from + count; ++g) ++c[s.locate(g).first];
  return c;
}

const std::vector<std::vector<double>> kWeightSets = {
    {0.7, 0.2, 0.1}, {1, 1}, {5, 3, 1, 1}, {0.01, 0.99}, {3, 1, 4, 1, 5, 9, 2, 6}};

}  // namespace

TEST(BlendSchedule, ProportionsWithinOnePercentOverAnyTenThousandSamples) {
  // Windows at the start, in the middle, straddling the end of the table and
  // several periods later.
  const std::vector<int64_t> starts = {0, 12345, L / 2 + 7, L - 5000, 7 * L + 3, 40 * L - 9999};
  for (const auto& w : kWeightSets) {
    dt::BlendSchedule s(w);
    double total = 0;
    for (double x : w) total += x;
    for (int64_t from : starts) {
      auto c = counts(s, from, 10000);
      for (size_t i = 0; i < w.size(); ++i) {
        const double want = w[i] / total;
        // "Within 1%": relative to the weight itself, the stricter reading.
        EXPECT_NEAR(c[i] / 10000.0, want, 0.01 * want) << "dataset " << i << " window at " << from;
      }
    }
  }
}

TEST(BlendSchedule, EveryPrefixIsWithinTwoSamplesOfItsShare) {
  // The deficit rule keeps |count_i(k) − w_i·k| small for every prefix k of
  // the period, which is what makes every window accurate.
  for (const auto& w : kWeightSets) {
    dt::BlendSchedule s(w);
    double total = 0;
    for (double x : w) total += x;
    std::vector<int64_t> c(w.size(), 0);
    double worst = 0;
    for (int64_t k = 0; k < L; ++k) {
      ++c[s.locate(k).first];
      for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, std::abs(c[i] - w[i] / total * (k + 1)));
    }
    EXPECT_LT(worst, 2.0) << "weights with " << w.size() << " datasets";
  }
}

TEST(BlendSchedule, EachDatasetStreamIsReadInOrderWithoutGaps) {
  // Over three periods every dataset's stream index runs 0, 1, 2, ... with
  // nothing skipped or repeated, across the table's wrap-around too.
  dt::BlendSchedule s({0.7, 0.2, 0.1});
  std::vector<int64_t> next(3, 0);
  for (int64_t g = 0; g < 3 * L; ++g) {
    auto [d, j] = s.locate(g);
    ASSERT_EQ(j, next[d]) << "g=" << g;
    ++next[d];
  }
  for (int d = 0; d < 3; ++d) EXPECT_EQ(next[d], 3 * s.per_period(d));
}

TEST(BlendSchedule, IsAPureFunctionOfNormalisedWeightsAndG) {
  dt::BlendSchedule a({1, 1}), b({2, 2}), c({0.7, 0.2, 0.1}), d({7, 2, 1});
  for (int64_t g : {int64_t(0), int64_t(1), int64_t(999), L - 1, L, 5 * L + 17}) {
    EXPECT_EQ(a.locate(g), b.locate(g));
    EXPECT_EQ(c.locate(g), d.locate(g));
  }
  // Two equal weights alternate, starting with the first dataset.
  EXPECT_EQ(a.locate(0), std::make_pair(0, int64_t(0)));
  EXPECT_EQ(a.locate(1), std::make_pair(1, int64_t(0)));
  EXPECT_EQ(a.locate(2), std::make_pair(0, int64_t(1)));
}

TEST(BlendSchedule, OneDatasetTakesEverySample) {
  dt::BlendSchedule s({3.5});
  for (int64_t g : {int64_t(0), int64_t(5), L + 1, 100 * L}) EXPECT_EQ(s.locate(g), std::make_pair(0, g));
}
