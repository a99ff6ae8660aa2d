// Which dataset each global sample comes from when several are blended with
// weights: a deterministic schedule, a pure function of (weights, g), so the
// loader state stays one number and any rank can locate any sample.
//
// The rule ("largest deficit", as in smooth weighted round-robin): with the
// weights w_i normalised to sum 1, position k of a table of kPeriod = 2^20
// entries goes to the dataset with the largest deficit w_i·(k+1) − c_i, where
// c_i counts the positions before k given to dataset i (ties: lowest i;
// computed in exact integers, shares quantised to 2^-32). The deficits sum to
// 1 and each stays above −1 (and below n, in practice below 1.3 for a dozen
// datasets), so every prefix of the table, hence every window of consecutive
// samples, holds each dataset within a couple of samples of its share.
//
// The table repeats: global sample g is position g mod kPeriod of repetition
// g div kPeriod, and it is sample
//   (g div kPeriod)·per_period(i) + (rank of position g mod kPeriod among i's)
// of dataset i's own stream, so each dataset's stream is read in order with
// no gap. A dataset whose weight is below about 1/kPeriod of the total may
// get no position at all (per_period = 0).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace dt {

class BlendSchedule {
 public:
  static constexpr int64_t kPeriod = int64_t(1) << 20;

  // weights: one per dataset, each finite and > 0 (callers report bad
  // weights with the dataset's name first); at most 65535 datasets.
  explicit BlendSchedule(const std::vector<double>& weights);

  int num_datasets() const { return static_cast<int>(per_period_.size()); }
  // (dataset, index in that dataset's sample stream) of global sample g >= 0.
  std::pair<int, int64_t> locate(int64_t g) const;
  // Positions of dataset d in one period of the table.
  int64_t per_period(int d) const { return per_period_[d]; }

 private:
  // Per table position: the dataset, and how many earlier positions it had.
  // Empty when there is one dataset (every sample is its own).
  std::vector<uint16_t> dataset_;
  std::vector<uint32_t> rank_;
  std::vector<int64_t> per_period_;
};

}  // namespace dt
