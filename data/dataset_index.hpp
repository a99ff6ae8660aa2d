// One dataset of the blend: its shards (sorted by name) cut into windows of
// T+1 tokens, and the seeded per-epoch order they are visited in. Pure
// arithmetic on shard sizes and long-window lists, no I/O, so any thread may
// call it.
//
// Shard s with N_s tokens holds n_s = (N_s − 1) / T windows when N_s >= T+1,
// else none; window k of a shard starts at token k·T, so neighbouring windows
// share one boundary token and no window crosses a shard boundary. The
// dataset's windows are numbered shard by shard, 0..n−1 (n = Σ n_s).
//
// Long-document up-sampling (data.long_doc_tokens = L, data.long_doc_factor =
// f; the context-extension recipe of "up-sampling long sequences"): a window
// is long when all its T+1 tokens lie in one document's span — the document's
// tokens plus its closing EOS, [doc_offsets[i], doc_offsets[i+1]) — and that
// document has at least L tokens (EOS excluded). A window that reaches into a
// second document is short, however long both documents are. L = 0 turns the
// rule off (no window is long).
//
// An epoch reads every short window once and every long window f times: it
// is a permutation of a virtual index space of N = n + (f−1)·n_long entries.
// Virtual entry v < n is window v itself (each window's first copy, long or
// short); entry n + c·n_long + i (c < f−1) is another copy of the i-th long
// window in ascending order. Sample j of the dataset's stream is the window of
// entry sample_position(j mod N, N, seed, j div N) (data/sample_order.hpp): a
// fresh permutation every epoch j div N, which spreads the copies, and still a
// pure function of (seed, j), so resume stays exact. With f = 1 or L = 0,
// N = n and the order is exactly the one without the rule.
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

// One shard as the metadata pass saw it.
struct ShardInput {
  std::string path;
  int64_t num_tokens = 0;
  // Shard-local numbers of its long windows, ascending: long_windows_of(its
  // /doc_offsets, T, L). Computed per shard so the offsets need not be kept.
  std::vector<int64_t> long_windows;
};

class DatasetIndex {
 public:
  // shards in reading order; long_doc_factor >= 1. Fails with a one-line
  // error naming `name` when no shard holds T+1 tokens (empty dataset, or T
  // too long).
  DatasetIndex(const std::string& name, std::vector<ShardInput> shards, int seq_len, uint64_t seed,
               int long_doc_factor = 1);

  // Shard-local numbers of the long windows of a shard whose documents start
  // at doc_offsets (num_docs + 1 values, the last = num_tokens, as
  // ShardReader::doc_offsets()), ascending; empty when long_doc_tokens <= 0.
  static std::vector<int64_t> long_windows_of(const std::vector<uint64_t>& doc_offsets, int seq_len,
                                              int64_t long_doc_tokens);

  struct Window {
    int shard;      // index into shards()
    int64_t start;  // first token; the window is [start, start + T + 1)
  };
  // The window that sample j >= 0 of this dataset's stream reads.
  Window at(int64_t j) const;
  // Its dataset window number, in [0, num_samples()).
  int64_t window_of(int64_t j) const;

  const std::vector<ShardWindows>& shards() const { return shards_; }
  int64_t num_samples() const { return num_samples_; }            // windows n
  int64_t num_long_samples() const { return num_long_; }          // long windows n_long
  int64_t samples_per_epoch() const { return samples_per_epoch_; }  // N = n + (f−1)·n_long
  int64_t num_tokens() const { return num_tokens_; }

 private:
  std::vector<ShardWindows> shards_;
  int seq_len_;
  uint64_t seed_;
  int64_t num_samples_ = 0, num_tokens_ = 0, num_long_ = 0, samples_per_epoch_ = 0;
  // Dataset numbers of the long windows, ascending; kept only when f > 1
  // (8 bytes per long window; the f copies are never materialised).
  std::vector<int64_t> long_;
};

}  // namespace dt
