#include "cli/eval_analysis_options.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "data/tokenizer.hpp"
#include "eval/activation_stats.hpp"
#include "eval/analysis_files.hpp"
#include "eval/quantization_sweep.hpp"
#include "cli/cli_args.hpp"

namespace dt {

namespace {

// "a,b,c": each value read by parse_option, the error naming the option.
template <typename T>
std::vector<T> parse_list(const std::string& opt, const std::string& text, T min, T max, const char* expected) {
  std::vector<T> out;
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    out.push_back(parse_option<T>(opt, text.substr(at, comma - at), min, max, expected));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

void add_analysis_options(CommandLine& cl, AnalysisArgs& a) {
  constexpr int64_t kMaxLen = int64_t(1) << 24;
  NeedleEvalOptions& n = a.needle_opt;
  cl.group("Analyses (DIFF Transformer paper)",
           "with any of these options eval runs only the analyses asked for (no perplexity\n"
           "pass, no eval.json; --batch and --max-tokens do not apply). They use a plain fp32\n"
           "forward of one sequence with explicit attention score matrices per head, for\n"
           "moderate lengths.\n");
  cl.flag("--needle", a.needle,
          "multi-needle retrieval: N needles \"The magic number of <city> is\n"
          "<7 digits>.\" in haystack text, R of them asked about at the end;\n"
          "exact match of the greedy answer. A depth x length table,\n"
          "OUT/needle.csv, OUT/needle_heatmap.png, and the attention on the\n"
          "answer span vs the rest of the context at the answer position,\n"
          "per layer: OUT/attention_allocation.csv (answer_span, noise =\n"
          "the rest before the question, question; DIFF: the maps\n"
          "diff = A1 - lambda*A2, a1, a2; baseline: softmax)");
  cl.value("--lengths", "L,...", "context lengths in tokens (default: the run's train.seq_len)",
           [&n](const std::string& v) {
             n.lengths = parse_list<int64_t>("--lengths", v, 1, kMaxLen, "comma-separated lengths >= 1");
           });
  cl.value("--depths", "D,...", "depths of the queried needles, 0..1 (default 0,0.25,0.5,0.75,1)",
           [&n](const std::string& v) {
             n.depths = parse_list<double>("--depths", v, 0.0, 1.0, "comma-separated depths in [0, 1]");
           });
  cl.integer("--needles", n.needles, 1, 1000, "N", "needles per context (default 1)");
  cl.integer("--queries", n.queries, 1, 1000, "R", "needles asked about, one sequence each (default 1, at most N)");
  cl.integer("--trials", n.trials, 1, 1 << 20, "K",
             "random draws (cities, numbers, haystack offset) per cell (default 1)");
  cl.integer<uint64_t>("--seed", n.seed, 0, UINT64_MAX, "S", "seed of those draws (default 0)");
  cl.text("--haystack", a.haystack, "PATH",
          "haystack: a text file, or token shards (directory, glob, *.h5);\n"
          "default: the first --data path");
  cl.flag("--activation-stats", a.activation_stats,
          "top-1 and median |attention logit| (causal q.k/sqrt(d), both maps\n"
          "for DIFF) and |hidden state| per layer: OUT/activation_stats.csv");
  cl.integer<int64_t>("--tokens", a.tokens, 1, INT64_MAX, "N",
                      "tokens of --data for --activation-stats and --quantize-logits\n"
                      "(windows of --seq-len; default 8192)");
  cl.value("--quantize-logits", "B,...",
           "absmax-quantize each attention-logit row to B bits (2..16)\n"
           "and report the loss on --data (and retrieval accuracy with\n"
           "--needle) at each width: OUT/quantization.csv, OUT/quantization.png",
           [&a](const std::string& v) {
             a.quantize_bits = parse_list<int>("--quantize-logits", v, 2, 16, "comma-separated bit widths in 2..16");
           });
}

void check_analysis_args(const AnalysisArgs& a, const std::vector<std::string>& data) {
  if (a.activation_stats && data.empty())
    throw UsageError("--activation-stats needs --data PATH (the text to measure on)");
  if (!a.quantize_bits.empty() && data.empty())
    throw UsageError("--quantize-logits needs --data PATH (the text to measure loss on)");
  if (a.needle && data.empty() && a.haystack.empty()) throw UsageError("--needle needs --haystack PATH or --data PATH");
  if (a.needle && a.needle_opt.queries > a.needle_opt.needles)
    throw UsageError("--queries " + std::to_string(a.needle_opt.queries) + ": more than --needles " +
                     std::to_string(a.needle_opt.needles));
}

std::vector<std::string> run_analyses(const EvalModel& em, const AnalysisArgs& a, const std::vector<std::string>& data,
                                      int seq_len, const std::string& out) {
  const Transformer& model = *em.model;
  const std::string label = std::string(model_kind_name(em.config.model.attention, true)) +
                            ", step " + std::to_string(em.step);
  std::vector<std::string> wrote;
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> haystack;
  NeedleEvalOptions nopt = a.needle_opt;
  if (a.needle) {
    if (nopt.lengths.empty()) nopt.lengths = {int64_t(em.config.train.seq_len)};
    if (nopt.depths.empty()) nopt.depths = {0, 0.25, 0.5, 0.75, 1};
    tok = make_tokenizer(em.config.data.tokenizer);
    const int64_t longest = *std::max_element(nopt.lengths.begin(), nopt.lengths.end());
    haystack = load_haystack(a.haystack.empty() ? data[0] : a.haystack, *tok, std::max<int64_t>(8 * longest, 65536));
    const NeedleEvalResult r = evaluate_needles(model, *tok, haystack, nopt);
    print_needle(r);
    for (const std::string& p : write_needle(out, r, label)) wrote.push_back(p);
  }
  std::vector<std::vector<int32_t>> windows;
  if (a.activation_stats || !a.quantize_bits.empty())
    windows = read_eval_windows(em.config, data, seq_len, a.tokens, 0);
  if (a.activation_stats) {
    const ActivationStatsResult r = collect_activation_stats(model, windows);
    print_activation_stats(r);
    wrote.push_back(write_activation_stats(out, r));
  }
  if (!a.quantize_bits.empty()) {
    const std::vector<QuantizationPoint> pts = evaluate_logit_quantization(
        model, windows, a.quantize_bits, a.needle ? &nopt : nullptr, tok.get(), haystack);
    print_quantization(pts);
    for (const std::string& p : write_quantization(out, pts, label)) wrote.push_back(p);
  }
  return wrote;
}

}  // namespace dt
