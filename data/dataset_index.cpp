#include "data/dataset_index.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "data/sample_order.hpp"

namespace dt {

DatasetIndex::DatasetIndex(const std::string& name, const std::vector<std::pair<std::string, int64_t>>& shards,
                           int seq_len, uint64_t seed)
    : seq_len_(seq_len), seed_(seed) {
  DT_CHECK(seq_len >= 1, seq_len);
  int64_t longest = 0;
  for (const auto& [path, tokens] : shards) {
    ShardWindows s;
    s.path = path;
    s.num_tokens = tokens;
    s.num_samples = tokens >= int64_t(seq_len) + 1 ? (tokens - 1) / seq_len : 0;
    s.first_sample = num_samples_;
    num_samples_ += s.num_samples;
    num_tokens_ += tokens;
    longest = std::max(longest, tokens);
    shards_.push_back(std::move(s));
  }
  if (num_tokens_ == 0)
    fail("dataset ", name, ": its ", shards.size(), " shard(s) hold no tokens (empty dataset)");
  if (num_samples_ == 0)
    fail("dataset ", name, ": no shard holds seq_len+1 = ", seq_len + 1, " tokens (longest shard has ", longest,
         "); use a shorter seq_len or larger shards");
}

DatasetIndex::Window DatasetIndex::at(int64_t j) const {
  DT_CHECK(j >= 0, j);
  const uint64_t n = static_cast<uint64_t>(num_samples_), u = static_cast<uint64_t>(j);
  const int64_t p = static_cast<int64_t>(sample_position(u % n, n, seed_, u / n));
  // The last shard whose first window is <= p; shards without windows share
  // their successor's first_sample and so are never picked.
  auto it = std::upper_bound(shards_.begin(), shards_.end(), p,
                             [](int64_t v, const ShardWindows& s) { return v < s.first_sample; });
  const int shard = static_cast<int>(it - shards_.begin()) - 1;
  return {shard, (p - shards_[shard].first_sample) * seq_len_};
}

}  // namespace dt
