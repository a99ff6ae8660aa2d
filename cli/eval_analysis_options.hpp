// The analysis options of `difftron eval` (cli/cmd_eval.cpp): needle
// retrieval with attention allocation, activation statistics and
// attention-logit quantization. Each runs on its own or with the others.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/eval_model.hpp"
#include "eval/needle_eval.hpp"

namespace dt {

class CommandLine;  // cli/cli_args.hpp

struct AnalysisArgs {
  bool needle = false, activation_stats = false;
  std::vector<int> quantize_bits;  // --quantize-logits
  NeedleEvalOptions needle_opt;    // lengths empty: the run's train.seq_len
  std::string haystack;            // empty: the first --data path
  int64_t tokens = 8192;           // --tokens: for activation statistics and quantization loss
  bool any() const { return needle || activation_stats || !quantize_bits.empty(); }
};

// Adds the analysis options, in a group of their own, to eval's command line.
// Bad values are one-line UsageErrors naming the option.
void add_analysis_options(CommandLine& cl, AnalysisArgs& a);
// Checks the combination (e.g. --activation-stats needs --data): a UsageError.
void check_analysis_args(const AnalysisArgs& a, const std::vector<std::string>& data);

// Runs the requested analyses on em's model: windows of seq_len + 1 tokens
// from `data`, the needle haystack from a.haystack or data[0]. Prints tables
// and returns the files written under out.
std::vector<std::string> run_analyses(const EvalModel& em, const AnalysisArgs& a, const std::vector<std::string>& data,
                                      int seq_len, const std::string& out);

}  // namespace dt
