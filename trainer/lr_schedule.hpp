#pragma once
#include <cstdint>

#include "core/config.hpp"

namespace dt {

// Learning rate for optimizer step `step` (0-based) of `total`: linear warmup
// from lr/warmup to lr over warmup_steps, then linear or cosine decay to min_lr
// at the last step (or constant).
double lr_at(const TrainConfig& t, int64_t step, int64_t total);

}  // namespace dt
