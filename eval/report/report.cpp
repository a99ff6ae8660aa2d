#include "eval/report/report.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.hpp"
#include "eval/analysis_files.hpp"
#include "eval/report/plot.hpp"
#include "eval/report/report_markdown.hpp"

namespace dt {

namespace {

// The baseline that deltas refer to: the first standard-attention run, else the first.
const ReportRun& baseline(const std::vector<ReportRun>& runs) {
  for (const ReportRun& r : runs)
    if (!r.is_diff()) return r;
  return runs[0];
}

// Loss curves against tokens seen: the whole run (log loss axis), and the
// second half, where the gap between the runs is visible.
void plot_losses(const std::string& out_dir, const std::vector<ReportRun>& runs, std::vector<std::string>& wrote) {
  for (bool tail : {false, true}) {
    LinePlot p;
    p.title = tail ? "Training loss, second half of training" : "Training loss";
    p.x_label = "Tokens seen (millions)";
    p.y_label = "Loss (nats per token)";
    p.log_y = !tail;
    for (const ReportRun& r : runs) {
      Series s;
      s.label = r.name;
      const int64_t from = tail ? r.metrics.back().step / 2 : 0;
      for (const MetricPoint& m : r.metrics)
        if (m.step >= from) s.x.push_back(double(m.tokens_seen) / 1e6), s.y.push_back(m.loss);
      p.series.push_back(std::move(s));
    }
    const std::string path = out_dir + (tail ? "/loss_curves_tail.png" : "/loss_curves.png");
    p.save(path);
    wrote.push_back(path);
  }
}

// Loss (or retrieval accuracy) against bits, each run's fp32 value as a flat
// line in a light tint of its colour. Returns false when no run has the values.
bool plot_quantization(const std::string& out_dir, const std::vector<ReportRun>& runs, bool retrieval,
                       std::vector<std::string>& wrote) {
  LinePlot p;
  p.title = retrieval ? "Needle retrieval vs attention-logit bits" : "Loss vs attention-logit bits";
  p.x_label = "Bits per attention logit (absmax per row)";
  p.y_label = retrieval ? "Retrieval accuracy" : "Held-out loss (nats per token)";
  std::vector<Series> lines, refs;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::vector<QuantizationRow>& q = runs[i].quantization;
    auto value = [&](const QuantizationRow& row) { return retrieval ? row.retrieval : std::optional<double>(row.loss); };
    Series s, ref;
    s.label = runs[i].name;
    ref.label = runs[i].name + " fp32";
    const Color c = palette_color(int(i));
    s.color = c;
    ref.color = Color{uint8_t((c.r + 2 * 255) / 3), uint8_t((c.g + 2 * 255) / 3), uint8_t((c.b + 2 * 255) / 3)};
    for (size_t k = 1; k < q.size(); ++k) {
      if (!value(q[k])) continue;
      s.x.push_back(std::stod(q[k].bits)), s.y.push_back(*value(q[k]));
      if (value(q[0])) ref.x.push_back(s.x.back()), ref.y.push_back(*value(q[0]));
    }
    if (s.x.empty()) continue;
    refs.push_back(std::move(ref));
    lines.push_back(std::move(s));
  }
  if (lines.empty()) return false;
  // References first, so a quantized line that meets its reference stays visible.
  for (Series& r : refs)
    if (!r.x.empty()) p.series.push_back(std::move(r));
  for (Series& l : lines) p.series.push_back(std::move(l));
  const std::string path = out_dir + (retrieval ? "/quantization_retrieval.png" : "/quantization.png");
  p.save(path);
  wrote.push_back(path);
  return true;
}

std::string verdict(bool same, bool opposite) { return same ? "same as the paper" : opposite ? "opposite" : "tie / mixed"; }

}  // namespace

std::string report_slug(const std::string& name) {
  std::string s;
  for (unsigned char c : name) s += std::isalnum(c) ? char(std::tolower(c)) : '-';
  return s.empty() ? "run" : s;
}

namespace {

// The claims for one differential run d (DIFF or DIFF V2) against the baseline t.
void add_claims(std::vector<ClaimCheck>& out, const ReportRun& d, const ReportRun& t) {
  auto both = [&](double a, double b, int decimals) {
    return d.name + " " + fmt_fixed(a, decimals) + " vs " + t.name + " " + fmt_fixed(b, decimals);
  };
  constexpr double kTie = 1e-4;  // differences below the CSVs' printed precision count as ties

  const double dl = d.perplexity.mean_nll, tl = t.perplexity.mean_nll;
  out.push_back({"Lower language-modeling loss at equal size (DIFF needs ~65% of the parameters or tokens)",
                 "held-out NLL " + both(dl, tl, 4), verdict(dl < tl - kTie, dl > tl + kTie)});

  const double da = d.needle.mean(), ta = t.needle.mean();
  out.push_back({"Better multi-needle retrieval", "mean accuracy " + both(da, ta, 3),
                 verdict(da > ta + kTie, da < ta - kTie)});

  const AllocationRow &dm = d.allocation_mean(), &tm = t.allocation_mean();
  out.push_back({"More attention on the answer span, less on noise",
                 "answer span " + both(dm.answer, tm.answer, 3) + "; noise " + both(dm.noise, tm.noise, 3) +
                     " (mean over layers)",
                 verdict(dm.answer > tm.answer && dm.noise < tm.noise, dm.answer < tm.answer && dm.noise > tm.noise)});

  const ActivationRow &dx = d.activation_all(), &tx = t.activation_all();
  out.push_back({"Fewer activation outliers",
                 "top-1 |attention logit| " + both(dx.logit_top1, tx.logit_top1, 2) + "; top-1 |hidden state| " +
                     both(dx.hidden_top1, tx.hidden_top1, 2),
                 verdict(dx.logit_top1 < tx.logit_top1 && dx.hidden_top1 < tx.hidden_top1,
                         dx.logit_top1 > tx.logit_top1 && dx.hidden_top1 > tx.hidden_top1)});

  // At the lowest bit width both runs measured.
  std::string bits;
  double dq = 0, tq = 0, lowest = 1e9;
  for (const QuantizationRow& a : d.quantization)
    for (const QuantizationRow& b : t.quantization)
      if (a.bits != "fp32" && a.bits == b.bits && std::stod(a.bits) < lowest)
        lowest = std::stod(a.bits), bits = a.bits, dq = a.delta_loss, tq = b.delta_loss;
  if (!bits.empty())
    out.push_back({"Robust to low-bit attention logits",
                   "loss increase at " + bits + " bits: " + d.name + " " + fmt_signed(dq, 4) + " vs " + t.name + " " +
                       fmt_signed(tq, 4),
                   verdict(dq < tq - kTie, dq > tq + kTie)});
}

}  // namespace

std::vector<ClaimCheck> check_paper_claims(const std::vector<ReportRun>& runs) {
  // One baseline (standard attention) and one or more differential runs
  // (DIFF, DIFF V2): each differential run's claims against the baseline.
  const auto standard = std::count_if(runs.begin(), runs.end(), [](const ReportRun& r) { return !r.is_diff(); });
  if (standard != 1 || runs.size() < 2) return {};
  const ReportRun& t = *std::find_if(runs.begin(), runs.end(), [](const ReportRun& r) { return !r.is_diff(); });
  std::vector<ClaimCheck> out;
  for (const ReportRun& d : runs)
    if (d.is_diff()) add_claims(out, d, t);
  return out;
}

std::vector<std::string> write_report(const ReportOptions& opt, const std::vector<ReportRun>& runs) {
  DT_CHECK(!runs.empty());
  const std::string& out = opt.out_dir;
  std::vector<std::string> wrote = {out + "/report.md"};
  const ReportRun& base = baseline(runs);
  std::vector<std::string> run_dirs, names;
  double max_params = 0, max_tokens = 0;
  for (const ReportRun& r : runs) {
    run_dirs.push_back("`" + r.run_dir + "`"), names.push_back(r.name);
    max_params = std::max(max_params, double(r.params));
    max_tokens = std::max(max_tokens, double(r.metrics.back().tokens_seen));
  }

  std::string md = "# " + opt.title + "\n\nGenerated by `difftron report` from the training runs " +
                   md_join(run_dirs, ", ") + " and their evaluations (`difftron eval`). Deltas are against " +
                   base.name + ".\n\n## Scale\n\n" + scale_table(runs) + "\n";
  for (const ReportRun& r : runs)
    for (const DatasetSpec& d : r.config.data.datasets)
      for (const std::string& e : r.perplexity.data)
        if (std::filesystem::path(d.path).lexically_normal() == std::filesystem::path(e).lexically_normal())
          md += "- " + r.name + " was evaluated on its training data (" + e +
                "): the evaluation windows may overlap training windows.\n";
  for (const std::string& n : opt.notes) md += "- " + n + "\n";
  md += "\n**Scale.** These models have at most " + fmt_short(max_params) + " parameters and saw at most " +
        fmt_short(max_tokens) +
        " tokens, trained on the CPU. The paper's models have 830M to 13.1B parameters, the 3B ones trained on "
        "1T tokens with 4K-token contexts (then 64K). **Small-scale results need not match the paper's**: "
        "the comparison below is a smoke test of the pipeline and of the direction of each effect, not a "
        "reproduction.\n\n";

  md += "## The paper's headline claims\n\nThe DIFF Transformer paper (Ye et al., arXiv 2410.05258) reports, for "
        "DIFF against a Transformer of the same size trained on the same data: lower language-modeling loss, "
        "better multi-needle retrieval, more attention on the answer and less on noise, fewer activation "
        "outliers, and robustness to low-bit attention logits.\n\n";
  const std::vector<ClaimCheck> claims = check_paper_claims(runs);
  if (!claims.empty()) {
    md += md_row({"paper's claim", "these runs", "direction here"}) + md_rule(3);
    for (const ClaimCheck& c : claims) md += md_row({c.claim, c.here, c.verdict});
    md += "\n";
  }

  plot_losses(out, runs, wrote);
  md += "## Training loss\n\n![Training loss](loss_curves.png)\n\n![Training loss, second half](loss_curves_tail.png)"
        "\n\n" + loss_table(runs, base);

  md += "\n## Multi-needle retrieval\n\nExact match of the greedy answer; the numbers of needles (N) and of queried "
        "ones (R) are in each heatmap's title.\n\n" + md_row(names) + md_rule(runs.size()) + "|";
  for (const ReportRun& r : runs) {
    const std::string file = "needle_heatmap_" + report_slug(r.name) + ".png";
    std::error_code ec;
    std::filesystem::copy_file(r.eval_dir + "/needle_heatmap.png", out + "/" + file,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot copy ", r.eval_dir, "/needle_heatmap.png to ", out, ": ", ec.message());
    wrote.push_back(out + "/" + file);
    md += " ![" + r.name + "](" + file + ") |";
  }
  md += "\n\n" + needle_table(runs);
  if (std::all_of(runs.begin(), runs.end(), [](const ReportRun& r) { return r.needle.mean() == 0; }))
    md += "\nNo model retrieved any needle: at this scale none has learned to copy a 7-digit number from its "
          "context, so this section (and the attention allocation, measured on the same prompts) says little about "
          "the paper's retrieval claims.\n";

  md += "\n## Attention allocation\n\nAttention at the answer position over the queried needle (answer span), the "
        "rest of the context before the question (noise) and the question, averaged over heads, samples and "
        "layers. DIFF's map `diff` = A1 − λ·A2 sums to 1 − λ; `a1`, `a2` and the Transformer's `softmax` sum to "
        "1.\n\n" + allocation_tables(runs);

  md += "\n## Activation outliers\n\nMagnitudes over every layer: attention logits q·k/√d before the softmax (both "
        "maps for DIFF) and hidden states (the residual stream after each layer). Top-1 is the largest; a large "
        "top-1 / median ratio means outliers.\n\n" + outlier_table(runs);

  const bool retrieval = plot_quantization(out, runs, true, wrote);
  if (!plot_quantization(out, runs, false, wrote)) fail("no run has quantized losses in its quantization.csv");
  md += "\n## Attention-logit quantization\n\nEach row of attention logits quantized to B bits (absmax, at "
        "evaluation only); loss on a sample of the evaluation data (smaller than the perplexity pass's, so the fp32 "
        "row need not equal the held-out NLL above)" +
        std::string(retrieval ? " and needle retrieval accuracy.\n\n" : ".\n\n") +
        "![Loss vs bits](quantization.png)\n\n" +
        (retrieval ? "![Retrieval vs bits](quantization_retrieval.png)\n\n" : "") + quantization_table(runs, retrieval);

  md += "\n## Files\n\n";
  for (const ReportRun& r : runs)
    md += "- " + r.name + ": `" + r.run_dir + "/metrics.jsonl`, `" + r.run_dir + "/config.yaml`; evaluation in `" +
          r.eval_dir + "/` (eval.json, needle.csv, attention_allocation.csv, activation_stats.csv, quantization.csv)\n";
  write_text_file(out + "/report.md", md);
  return wrote;
}

}  // namespace dt
