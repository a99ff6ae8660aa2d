// Streaming statistics of |x| over very many values (every causal attention
// logit of every head, every hidden-state element): the exact maximum and a
// median read from a fine log-spaced histogram.
//
// Why a histogram: the DIFF Transformer paper's Table 5 reports the median of
// ~10^9 values per model; storing them for an exact median would need
// gigabytes. Bins are the top 10 mantissa bits of the float, i.e. a relative
// width of at most 2^-10 (0.1%), over |x| in [2^-40, 2^40); values below
// 2^-40 count as zero and values at or above 2^40 in one overflow bin. The
// median interpolates linearly inside its bin, so it is within 0.1% of the
// exact order statistic. Histograms merge exactly (same bins everywhere).
#pragma once
#include <cstdint>
#include <vector>

namespace dt {

class AbsStats {
 public:
  AbsStats();
  void add(float x);
  void add(const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) add(x[i]);
  }
  void merge(const AbsStats& o);

  int64_t count() const { return count_; }
  double max() const { return max_; }  // top-1 |x|, exact; 0 when empty
  double mean() const { return count_ ? sum_ / double(count_) : 0.0; }
  // The median of |x|: the value of rank (count−1)/2 (the mean of the two
  // middle ranks when count is even), within 0.1% relative; 0 when empty.
  double median() const { return quantile(0.5); }
  // The q-quantile (0 ≤ q ≤ 1) on the same rank convention.
  double quantile(double q) const;

 private:
  double value_at_rank(int64_t r) const;  // r-th smallest |x| (0-based), estimated in its bin

  std::vector<uint64_t> bins_;  // [0]: below 2^-40 (zero), [1 .. n−2]: log bins, [n−1]: overflow
  int64_t count_ = 0;
  double max_ = 0, sum_ = 0;
};

}  // namespace dt
