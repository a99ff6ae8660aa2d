// One dataset of the blend: its shards (sorted by name) cut into windows of
// T+1 tokens, and the seeded per-epoch order they are visited in. Pure
// arithmetic on shard sizes, no I/O, so any thread may call it.
//
// Shard s with N_s tokens holds n_s = (N_s − 1) / T windows when N_s >= T+1,
// else none; window k of a shard starts at token k·T, so neighbouring windows
// share one boundary token and no window crosses a shard boundary. The
// dataset's windows are numbered shard by shard, 0..n−1 (n = Σ n_s). Sample j
// of the dataset's stream is window sample_position(j mod n, n, seed, j div n)
// (data/sample_order.hpp): a fresh permutation every epoch j div n.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

struct ShardWindows {
  std::string path;
  int64_t num_tokens = 0;
  int64_t num_samples = 0;   // windows in this shard
  int64_t first_sample = 0;  // dataset window number of its first window
};

class DatasetIndex {
 public:
  // shards: (path, num_tokens) in reading order. Fails with a one-line error
  // naming `name` when no shard holds T+1 tokens (empty dataset, or T too long).
  DatasetIndex(const std::string& name, const std::vector<std::pair<std::string, int64_t>>& shards,
               int seq_len, uint64_t seed);

  struct Window {
    int shard;      // index into shards()
    int64_t start;  // first token; the window is [start, start + T + 1)
  };
  // The window that sample j >= 0 of this dataset's stream reads.
  Window at(int64_t j) const;

  const std::vector<ShardWindows>& shards() const { return shards_; }
  int64_t num_samples() const { return num_samples_; }
  int64_t num_tokens() const { return num_tokens_; }

 private:
  std::vector<ShardWindows> shards_;
  int seq_len_;
  uint64_t seed_;
  int64_t num_samples_ = 0, num_tokens_ = 0;
};

}  // namespace dt
