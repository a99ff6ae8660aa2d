#include "trainer/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace dt {

double lr_at(const TrainConfig& t, int64_t step, int64_t total) {
  if (step < t.warmup_steps) return t.lr * double(step + 1) / double(t.warmup_steps);
  if (t.decay == LrDecay::Constant) return t.lr;
  const int64_t decay_steps = std::max<int64_t>(1, total - 1 - t.warmup_steps);
  const double progress = std::clamp(double(step - t.warmup_steps) / double(decay_steps), 0.0, 1.0);
  const double shape = t.decay == LrDecay::Linear ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return t.min_lr + (t.lr - t.min_lr) * shape;
}

}  // namespace dt
