#include "data/blend_schedule.hpp"

#include <climits>
#include <cmath>

#include "core/error.hpp"

namespace dt {

BlendSchedule::BlendSchedule(const std::vector<double>& weights) {
  const size_t n = weights.size();
  DT_CHECK(n >= 1 && n <= 65535, "datasets ", n);
  double total = 0;
  for (double w : weights) {
    DT_CHECK(std::isfinite(w) && w > 0, "weight ", w);
    total += w;
  }
  per_period_.assign(n, 0);
  if (n == 1) {
    per_period_[0] = kPeriod;
    return;
  }
  // Shares in units of 2^-32, so the deficits below are exact integers: the
  // table (ties included) is the same on every machine and for every way of
  // writing the same proportions ({1, 1} and {2, 2}, {0.7, 0.2, 0.1} and {7, 2, 1}).
  std::vector<int64_t> q(n);
  int64_t q_total = 0;
  for (size_t i = 0; i < n; ++i) q_total += q[i] = std::llround(weights[i] / total * 4294967296.0);
  dataset_.resize(kPeriod);
  rank_.resize(kPeriod);
  // O(kPeriod·n) once per loader: a few milliseconds for a handful of datasets.
  for (int64_t k = 0; k < kPeriod; ++k) {
    size_t best = 0;
    int64_t best_deficit = INT64_MIN;
    for (size_t i = 0; i < n; ++i) {
      // (w_i·(k+1) − c_i)·q_total: below 2^33·2^20, far from overflow.
      const int64_t deficit = q[i] * (k + 1) - per_period_[i] * q_total;
      if (deficit > best_deficit) {
        best_deficit = deficit;
        best = i;
      }
    }
    dataset_[k] = static_cast<uint16_t>(best);
    rank_[k] = static_cast<uint32_t>(per_period_[best]++);
  }
}

std::pair<int, int64_t> BlendSchedule::locate(int64_t g) const {
  DT_CHECK(g >= 0, g);
  if (dataset_.empty()) return {0, g};
  const int64_t period = g / kPeriod, k = g % kPeriod;
  const int d = dataset_[k];
  return {d, period * per_period_[d] + rank_[k]};
}

}  // namespace dt
