// Activation statistics of the DIFF Transformer paper's Table 5: the top-1
// (largest) and median magnitude of the attention logits (q·k/√d before the
// softmax, causal entries only; both maps for DIFF) and of the hidden states
// (the residual stream after each layer), per layer and over the whole model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/abs_histogram.hpp"
#include "model/transformer.hpp"

namespace dt {

struct ActivationStatsResult {
  int64_t windows = 0, tokens = 0;
  std::vector<AbsStats> logits, hidden;  // per layer
  AbsStats logits_all, hidden_all;       // every layer merged
};

// Runs the analysis forward over each window's first T tokens (windows of
// T + 1 tokens, as the evaluation data gives them).
ActivationStatsResult collect_activation_stats(const Transformer& model,
                                               const std::vector<std::vector<int32_t>>& windows);

// A table on stdout, and OUT/activation_stats.csv with one row per layer and a
// last row "all": layer,logit_top1,logit_median,hidden_top1,hidden_median,
// logit_count,hidden_count. Returns the path written.
void print_activation_stats(const ActivationStatsResult& r);
std::string write_activation_stats(const std::string& out_dir, const ActivationStatsResult& r);

}  // namespace dt
