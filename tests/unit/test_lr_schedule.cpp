#include <gtest/gtest.h>

#include <cmath>

#include "trainer/lr_schedule.hpp"

namespace dt {
namespace {

TrainConfig schedule(LrDecay decay) {
  TrainConfig t;
  t.lr = 1e-3;
  t.min_lr = 1e-4;
  t.warmup_steps = 10;
  t.decay = decay;
  return t;
}

TEST(LrSchedule, WarmupRisesLinearlyToPeak) {
  const TrainConfig t = schedule(LrDecay::Linear);
  EXPECT_DOUBLE_EQ(lr_at(t, 0, 100), 1e-4);  // (0+1)/10 of the peak
  EXPECT_DOUBLE_EQ(lr_at(t, 4, 100), 5e-4);
  EXPECT_DOUBLE_EQ(lr_at(t, 9, 100), 1e-3);
}

TEST(LrSchedule, LinearDecayEndsAtMinLrOnLastStep) {
  const TrainConfig t = schedule(LrDecay::Linear);
  EXPECT_DOUBLE_EQ(lr_at(t, 10, 101), 1e-3);
  EXPECT_NEAR(lr_at(t, 55, 101), 0.5 * (1e-3 + 1e-4), 1e-12);  // halfway
  EXPECT_NEAR(lr_at(t, 100, 101), 1e-4, 1e-15);
}

TEST(LrSchedule, CosineDecayFollowsHalfCosine) {
  const TrainConfig t = schedule(LrDecay::Cosine);
  const int64_t total = 111;  // 100 decay intervals after warmup
  for (int64_t s : {10, 35, 60, 85, 110}) {
    const double progress = double(s - 10) / 100.0;
    EXPECT_NEAR(lr_at(t, s, total), 1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(M_PI * progress)), 1e-15) << s;
  }
}

TEST(LrSchedule, ConstantStaysAtPeakAfterWarmup) {
  const TrainConfig t = schedule(LrDecay::Constant);
  EXPECT_DOUBLE_EQ(lr_at(t, 50, 100), 1e-3);
  EXPECT_DOUBLE_EQ(lr_at(t, 99, 100), 1e-3);
}

}  // namespace
}  // namespace dt
