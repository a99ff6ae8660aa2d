// difftron eval CKPT --data PATH [...]: perplexity of a checkpoint, and the
// cumulative average NLL by position (DIFF Transformer paper, long-context figure);
// with analysis options (cli/eval_analysis_options.hpp) needle retrieval, activation
// statistics and attention-logit quantization instead.

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"
#include "cli/cli_args.hpp"
#include "cli/eval_analysis_options.hpp"
#include "eval/eval_model.hpp"
#include "eval/perplexity.hpp"
#include "eval/report/plot.hpp"
#include "cli/commands.hpp"
#include "trainer/trainer.hpp"

namespace dt {

namespace {

// Far beyond any trained context or useful batch; the memory check then judges the product.
constexpr int kMaxEvalSeqLen = 1 << 24, kMaxEvalBatch = 1 << 16;

struct EvalArgs {
  std::string ckpt, out;
  EvalOptions opt;
  int seq_len = 0, batch = 0;
  std::optional<double> rope_theta;
  AnalysisArgs analysis;
};

// The command line; false when --help was printed.
bool parse_args(int argc, char** argv, EvalArgs& a) {
  CommandLine cl("eval",
                 "usage: difftron eval CKPT --data PATH [--data PATH ...] [options]\n"
                 "       difftron eval CKPT [--data PATH] --needle | --activation-stats | --quantize-logits B,... "
                 "[options]\n",
                 "Perplexity of a checkpoint's model on prepared token shards: the mean NLL\n"
                 "(nats) over every target token of windows of T+1 tokens, and its exp. One\n"
                 "process, every core. Windows are each data path's own non-overlapping\n"
                 "windows in a fixed seeded order (seed 0, a uniform sample without repeats),\n"
                 "the budget split between paths in proportion to their sizes; windows may\n"
                 "span document boundaries. Writes OUT/eval.json.\n");
  cl.positional("CKPT", a.ckpt,
                "a step_<N> checkpoint directory, or a checkpoint root (then\n"
                "the newest complete checkpoint in it)");
  cl.texts("--data", a.opt.data, "PATH",
           "shards: a directory, file or glob (repeatable); their\n"
           "tokenizer must be the checkpoint's");
  cl.integer("--seq-len", a.seq_len, 1, kMaxEvalSeqLen, "T", "tokens per window (default: the run's train.seq_len)");
  cl.integer("--batch", a.batch, 1, kMaxEvalBatch, "B",
             "windows per forward pass (default: the run's parallel.micro_batch_size)");
  cl.value("--max-tokens", "N",
           "evaluate N / T windows at most (default 1048576; 'all' or 0:\n"
           "every window)",
           [&a](const std::string& v) {
             a.opt.max_tokens = v == "all" ? 0 : parse_int_option<int64_t>("--max-tokens", v, 0, INT64_MAX);
           });
  cl.value("--rope-theta", "X", "RoPE base to evaluate with (default: the run's model.rope_theta)",
           [&a](const std::string& v) {
             a.rope_theta = parse_option<double>("--rope-theta", v, std::numeric_limits<double>::min(),
                                                 std::numeric_limits<double>::max(), "a number > 0");
           });
  cl.flag("--nll-by-position", a.opt.by_position,
          "also the cumulative average NLL of the first p target tokens,\n"
          "averaged over windows, for p = 1..T: a table on stdout,\n"
          "OUT/nll_by_position.csv (position,cumulative_nll,nll_at_position)\n"
          "and a plot OUT/nll_by_position.png (log-scale positions)");
  cl.text("--out", a.out, "DIR", "output directory (default: eval_step_<N> in the current directory)");
  add_analysis_options(cl, a.analysis);
  if (!cl.parse(argc, argv)) return false;
  if (a.ckpt.empty()) throw UsageError("missing CKPT (usage: difftron eval CKPT --data PATH [options])");
  if (a.analysis.any() && a.opt.by_position)
    throw UsageError("--nll-by-position belongs to the perplexity pass, which the analysis options replace; "
                     "run it separately");
  if (a.analysis.any()) check_analysis_args(a.analysis, a.opt.data);
  else if (a.opt.data.empty()) throw UsageError("missing --data PATH (prepared shards to evaluate on)");
  return true;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f || !(f << text) || !f.flush()) fail("cannot write ", path);
}

void write_outputs(const std::string& out, const EvalModel& em, const EvalArgs& a, const EvalResult& r) {
  const int T = r.seq_len;
  // A non-finite mean_nll or perplexity (a diverged model) is written as null.
  Json j = {{"checkpoint", em.dir},
            {"step", em.step},
            {"seq_len", T},
            {"batch", em.model->micro_batch()},
            {"rope_theta", em.config.model.rope_theta},
            {"windows", r.windows},
            {"tokens", r.tokens},
            {"mean_nll", r.mean_nll()},
            {"perplexity", r.perplexity()},
            {"seconds", r.seconds},
            {"data", Json::array()}};
  for (const DatasetEval& d : r.datasets) {
    const double mean = d.windows ? d.nll_sum / double(d.windows * T) : 0.0;
    j["data"].push_back(
        {{"path", d.path}, {"windows_available", d.windows_available}, {"windows", d.windows}, {"mean_nll", mean}});
  }
  if (a.opt.by_position) j["nll_by_position"] = "nll_by_position.csv";
  write_text(out + "/eval.json", json_text_of(j, 2) + "\n");
  if (!a.opt.by_position) return;

  const std::vector<double> cum = r.by_position.cumulative(), at = r.by_position.at_position();
  std::string csv = "position,cumulative_nll,nll_at_position\n";
  char line[96];
  for (int p = 1; p <= T; ++p) {
    std::snprintf(line, sizeof line, "%d,%.6f,%.6f\n", p, cum[p - 1], at[p - 1]);
    csv += line;
  }
  write_text(out + "/nll_by_position.csv", csv);

  LinePlot plot;
  plot.title = "Cumulative average NLL by position, step " + std::to_string(em.step);
  plot.x_label = "Position (tokens)";
  plot.y_label = "Cumulative average NLL (nats)";
  plot.log_x = true;
  Series s;
  s.label = std::string(model_kind_name(em.config.model.attention, true)) + ", " +
            std::to_string(r.windows) + " windows";
  for (int p = 1; p <= T; ++p) s.x.push_back(p), s.y.push_back(cum[p - 1]);
  plot.series.push_back(std::move(s));
  plot.save(out + "/nll_by_position.png");
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  EvalArgs a;
  if (!parse_args(argc, argv, a)) return 0;
  use_cpu_threads(0);

  // The analyses run one sequence at a time: no batch of activations needed.
  const EvalModel em = load_model_for_eval(a.ckpt, a.analysis.any() ? 1 : a.batch, a.seq_len, a.rope_theta);
  const std::string out = a.out.empty() ? "eval_step_" + std::to_string(em.step) : a.out;
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out)) fail("--out ", out, ": cannot create the directory (", ec.message(), ")");
  if (a.analysis.any()) {
    std::string wrote;
    for (const std::string& p : run_analyses(em, a.analysis, a.opt.data, em.model->seq_len(), out))
      wrote += (wrote.empty() ? "" : ", ") + p;
    std::printf("wrote %s\n", wrote.c_str());
    return 0;
  }

  const EvalResult r = evaluate_perplexity(*em.model, em.config, a.opt);
  std::printf("eval: %s (step %lld): %lld windows x %d tokens = %lld tokens, mean NLL %.4f nats, perplexity %.4f "
              "(%.1f s, %.0f tokens/s)\n",
              em.dir.c_str(), static_cast<long long>(em.step), static_cast<long long>(r.windows), r.seq_len,
              static_cast<long long>(r.tokens), r.mean_nll(), r.perplexity(), r.seconds,
              r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0);
  if (a.opt.by_position) {
    const std::vector<double> cum = r.by_position.cumulative(), at = r.by_position.at_position();
    std::printf("cumulative average NLL by position (mean over %lld windows):\n", static_cast<long long>(r.windows));
    std::printf("  %8s  %14s  %15s\n", "position", "cumulative_nll", "nll_at_position");
    for (int p : log_spaced_positions(r.seq_len))
      std::printf("  %8d  %14.4f  %15.4f\n", p, cum[p - 1], at[p - 1]);
  }
  write_outputs(out, em, a, r);
  std::string wrote = out + "/eval.json";
  if (a.opt.by_position) wrote += ", " + out + "/nll_by_position.csv, " + out + "/nll_by_position.png";
  std::printf("wrote %s\n", wrote.c_str());
  return 0;
}

}  // namespace dt
