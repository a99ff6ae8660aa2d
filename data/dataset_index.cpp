#include "data/dataset_index.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "data/sample_order.hpp"

namespace dt {

DatasetIndex::DatasetIndex(const std::string& name, std::vector<ShardInput> shards, int seq_len, uint64_t seed,
                           int long_doc_factor)
    : seq_len_(seq_len), seed_(seed) {
  DT_CHECK(seq_len >= 1, seq_len);
  DT_CHECK(long_doc_factor >= 1, long_doc_factor);
  int64_t longest = 0;
  for (ShardInput& in : shards) {
    ShardWindows s;
    s.path = std::move(in.path);
    s.num_tokens = in.num_tokens;
    s.num_samples = in.num_tokens >= int64_t(seq_len) + 1 ? (in.num_tokens - 1) / seq_len : 0;
    s.first_sample = num_samples_;
    for (size_t i = 0; i < in.long_windows.size(); ++i) {
      const int64_t k = in.long_windows[i];
      DT_CHECK(k >= 0 && k < s.num_samples && (i == 0 || k > in.long_windows[i - 1]), "shard ", s.path,
               " long window ", k, " of ", s.num_samples);
      if (long_doc_factor > 1) long_.push_back(s.first_sample + k);
    }
    num_long_ += static_cast<int64_t>(in.long_windows.size());
    std::vector<int64_t>().swap(in.long_windows);  // free as we go: the copy above is the one kept
    num_samples_ += s.num_samples;
    num_tokens_ += s.num_tokens;
    longest = std::max(longest, s.num_tokens);
    shards_.push_back(std::move(s));
  }
  if (num_tokens_ == 0)
    fail("dataset ", name, ": its ", shards.size(), " shard(s) hold no tokens (empty dataset)");
  if (num_samples_ == 0)
    fail("dataset ", name, ": no shard holds seq_len+1 = ", seq_len + 1, " tokens (longest shard has ", longest,
         "); use a shorter seq_len or larger shards");
  int64_t extra = 0;
  if (__builtin_mul_overflow(int64_t(long_doc_factor - 1), num_long_, &extra) ||
      __builtin_add_overflow(num_samples_, extra, &samples_per_epoch_))
    fail("dataset ", name, ": ", num_samples_, " windows with ", num_long_, " long ones read long_doc_factor = ",
         long_doc_factor, " times overflow an epoch; use a smaller data.long_doc_factor");
}

std::vector<int64_t> DatasetIndex::long_windows_of(const std::vector<uint64_t>& doc_offsets, int seq_len,
                                                   int64_t long_doc_tokens) {
  DT_CHECK(seq_len >= 1, seq_len);
  std::vector<int64_t> out;
  if (long_doc_tokens <= 0) return out;
  const int64_t T = seq_len;
  for (size_t i = 0; i + 1 < doc_offsets.size(); ++i) {
    // Document i's span [b, e) is its tokens then its EOS.
    const int64_t b = static_cast<int64_t>(doc_offsets[i]), e = static_cast<int64_t>(doc_offsets[i + 1]);
    if (e - b - 1 < long_doc_tokens || e - b < T + 1) continue;
    // Windows k with k·T >= b and k·T + T + 1 <= e.
    for (int64_t k = (b + T - 1) / T; k <= (e - T - 1) / T; ++k) out.push_back(k);
  }
  return out;
}

int64_t DatasetIndex::window_of(int64_t j) const {
  DT_CHECK(j >= 0, j);
  const uint64_t N = static_cast<uint64_t>(samples_per_epoch_), u = static_cast<uint64_t>(j);
  const int64_t v = static_cast<int64_t>(sample_position(u % N, N, seed_, u / N));
  if (v < num_samples_) return v;  // a window's first copy (always the case without up-sampling)
  return long_[static_cast<size_t>((v - num_samples_) % static_cast<int64_t>(long_.size()))];
}

DatasetIndex::Window DatasetIndex::at(int64_t j) const {
  const int64_t p = window_of(j);
  // The last shard whose first window is <= p; shards without windows share
  // their successor's first_sample and so are never picked.
  auto it = std::upper_bound(shards_.begin(), shards_.end(), p,
                             [](int64_t v, const ShardWindows& s) { return v < s.first_sample; });
  const int shard = static_cast<int>(it - shards_.begin()) - 1;
  return {shard, (p - shards_[shard].first_sample) * seq_len_};
}

}  // namespace dt
