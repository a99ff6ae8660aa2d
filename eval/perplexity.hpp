// Perplexity and NLL by position over evaluation windows of T+1 tokens.
//
// Windows: each data path is one dataset, read by a DataLoader (dp 1, seed
// EvalOptions::seed, no long-document up-sampling), so windows are the
// dataset's own non-overlapping T+1-token windows (neighbours share one
// boundary token; none crosses a shard) in its seeded first-epoch order, a
// uniform sample without repeats. The window budget max_tokens / T (at least
// one) is capped at all windows of all paths and split between the paths in
// proportion to their window counts. Windows may span document boundaries.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "model/transformer.hpp"

namespace dt {

// Per-position loss sums over windows of T target tokens, for the DIFF
// Transformer paper's long-context figure.
class PositionNll {
 public:
  explicit PositionNll(int seq_len) : sum_(size_t(seq_len), 0.0) {}
  // losses (rows, T): per-token NLL of `rows` windows.
  void add(const float* losses, int rows);
  int seq_len() const { return int(sum_.size()); }
  int64_t windows() const { return windows_; }
  // Index p−1 holds position p = 1..T. at_position: mean over windows of the
  // NLL of target token p. cumulative: mean over windows of the average NLL of
  // target tokens 1..p (every window has T tokens, so this equals the running
  // mean of at_position).
  std::vector<double> at_position() const;
  std::vector<double> cumulative() const;

 private:
  std::vector<double> sum_;
  int64_t windows_ = 0;
};

// About n positions in 1..T, evenly spaced on a log scale, always 1 and T.
std::vector<int> log_spaced_positions(int seq_len, int n = 20);

struct EvalOptions {
  std::vector<std::string> data;      // shard paths: a directory, a file or a glob each
  int64_t max_tokens = int64_t(1) << 20;  // target tokens to evaluate at most; <= 0: every window
  uint64_t seed = 0;                  // the window order
  bool by_position = false;           // also fill EvalResult::by_position
  double progress_seconds = 10;       // a progress line on stderr this often (<= 0: none)
};

struct DatasetEval {
  std::string path;
  int64_t windows_available = 0, windows = 0;
  double nll_sum = 0;  // over windows·T target tokens
};

struct EvalResult {
  int seq_len = 0;
  int64_t windows = 0, tokens = 0;
  double nll_sum = 0;  // nats, summed over every target token
  std::vector<DatasetEval> datasets;
  PositionNll by_position{0};  // seq_len positions when EvalOptions::by_position
  double seconds = 0;

  double mean_nll() const { return tokens ? nll_sum / double(tokens) : 0.0; }
  double perplexity() const;
};

// Runs the model over the windows (model.seq_len() tokens each, model.micro_batch()
// per forward). cfg is the model's run config: the shards' tokenizer must be
// its data.tokenizer and every token id below its model.vocab_size.
EvalResult evaluate_perplexity(Transformer& model, const Config& cfg, const EvalOptions& opt);

}  // namespace dt
