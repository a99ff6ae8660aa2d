#include "eval/abs_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/error.hpp"

namespace dt {

namespace {

// Positive floats order like their bit patterns, so (bits >> 13) is a bin of
// 2^10 per octave. Exponent field 87 is 2^-40, 167 is 2^40.
constexpr uint32_t kShift = 23 - 10;
constexpr uint32_t kFirst = uint32_t(127 - 40) << 10;  // (bits >> kShift) of 2^-40
constexpr uint32_t kLast = uint32_t(127 + 40) << 10;   // (bits >> kShift) of 2^40
constexpr size_t kBins = kLast - kFirst + 2;

double bin_lower(size_t b) {  // lower edge of log bin b (1 .. kBins−2)
  return double(std::bit_cast<float>(uint32_t(b - 1 + kFirst) << kShift));
}

}  // namespace

AbsStats::AbsStats() : bins_(kBins, 0) {}

void AbsStats::add(float x) {
  const float a = std::fabs(x);
  const uint32_t key = std::bit_cast<uint32_t>(a) >> kShift;
  size_t b;
  if (!std::isfinite(a) || key >= kLast) b = kBins - 1;
  else if (key < kFirst) b = 0;
  else b = key - kFirst + 1;
  ++bins_[b];
  ++count_;
  if (!(a <= max_)) max_ = std::isfinite(a) ? double(a) : INFINITY;
  sum_ += a;
}

void AbsStats::merge(const AbsStats& o) {
  for (size_t b = 0; b < kBins; ++b) bins_[b] += o.bins_[b];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

double AbsStats::value_at_rank(int64_t r) const {
  uint64_t before = 0;
  for (size_t b = 0; b < kBins; ++b) {
    const uint64_t n = bins_[b];
    if (n == 0 || uint64_t(r) >= before + n) {
      before += n;
      continue;
    }
    if (b == 0) return 0.0;
    if (b == kBins - 1) return max_;
    // Ranks inside the bin spread evenly over [lo, hi); never above the true maximum.
    const double lo = bin_lower(b), hi = bin_lower(b + 1);
    const double frac = (double(uint64_t(r) - before) + 0.5) / double(n);
    return std::min(lo + frac * (hi - lo), max_);
  }
  return max_;
}

double AbsStats::quantile(double q) const {
  DT_CHECK(q >= 0 && q <= 1, "quantile ", q);
  if (count_ == 0) return 0.0;
  const double pos = q * double(count_ - 1);
  const int64_t r0 = int64_t(std::floor(pos)), r1 = int64_t(std::ceil(pos));
  const double v0 = value_at_rank(r0);
  return r1 == r0 ? v0 : v0 + (pos - double(r0)) * (value_at_rank(r1) - v0);
}

}  // namespace dt
