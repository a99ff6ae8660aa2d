#include "eval/report/report_markdown.hpp"

#include <algorithm>
#include <cstdio>

namespace dt {

namespace {

template <typename F>
std::vector<std::string> per_run(const std::vector<ReportRun>& runs, F f) {
  std::vector<std::string> v;
  for (const ReportRun& r : runs) v.push_back(f(r));
  return v;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string code(const std::string& s) { return "`" + s + "`"; }

}  // namespace

std::string fmt_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  const std::string s = buf;  // no "-0.000" for a value that rounds to zero
  return s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos ? s.substr(1) : s;
}

std::string fmt_signed(double v, int decimals) {
  std::string s = fmt_fixed(v, decimals);
  if (s[0] != '-') s.insert(s.begin(), '+');
  return s;
}

std::string fmt_grouped(int64_t v) {
  const std::string s = std::to_string(v < 0 ? -v : v);
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string fmt_short(double v) {
  if (v >= 1e9) return fmt_fixed(v / 1e9, 2) + "B";
  if (v >= 1e6) return fmt_fixed(v / 1e6, 2) + "M";
  if (v >= 1e3) return fmt_fixed(v / 1e3, 1) + "K";
  return fmt_fixed(v, 0);
}

std::string md_row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const std::string& c : cells) {
    out += ' ';
    for (char ch : c) {
      if (ch == '|') out += '\\';
      out += ch;
    }
    out += " |";
  }
  return out + "\n";
}

std::string md_rule(size_t columns) {
  std::string out = "|";
  for (size_t i = 0; i < columns; ++i) out += " --- |";
  return out + "\n";
}

std::string md_join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

double final_train_loss(const ReportRun& r) {
  const size_t n = std::min(kTailPoints, r.metrics.size());
  double s = 0;
  for (size_t i = r.metrics.size() - n; i < r.metrics.size(); ++i) s += r.metrics[i].loss;
  return s / double(n);
}

std::string scale_table(const std::vector<ReportRun>& runs) {
  std::string md = md_row(concat({""}, per_run(runs, [](const ReportRun& r) { return r.name; }))) +
                   md_rule(runs.size() + 1);
  auto prop = [&](const std::string& what, auto get) { md += md_row(concat({what}, per_run(runs, get))); };
  prop("attention", [](const ReportRun& r) {
    const ModelConfig& m = r.config.model;
    const std::string d = std::to_string(m.head_dim()), H = std::to_string(m.n_heads);
    switch (m.attention) {
      case AttentionKind::Diff:
        return "DIFF: " + H + " heads × 2 maps of d = " + d;
      case AttentionKind::DiffV2:
        return "DIFF V2: " + H + " heads of 2 query heads of d = " + d + ", σ(λ) per token";
      default:
        return "softmax: " + H + " heads of d = " + d;
    }
  });
  prop("parameters", [](const ReportRun& r) { return fmt_grouped(r.params); });
  prop("of which λ (vectors and g_sub, or lambda_proj)", [](const ReportRun& r) { return fmt_grouped(r.diff_only_params); });
  prop("d_model × layers, FFN", [](const ReportRun& r) {
    const ModelConfig& m = r.config.model;
    return std::to_string(m.d_model) + " × " + std::to_string(m.n_layers) + ", " + std::to_string(m.ffn_hidden);
  });
  prop("tokenizer (vocabulary)", [](const ReportRun& r) {
    return r.config.data.tokenizer + " (" + std::to_string(r.config.model.vocab_size) + ")";
  });
  prop("sequence length", [](const ReportRun& r) { return std::to_string(r.config.train.seq_len); });
  prop("tokens per step",
       [](const ReportRun& r) { return fmt_grouped(r.config.train.global_batch_size * r.config.train.seq_len); });
  prop("steps", [](const ReportRun& r) { return fmt_grouped(r.metrics.back().step); });
  prop("tokens seen", [](const ReportRun& r) { return fmt_grouped(r.metrics.back().tokens_seen); });
  prop("training data", [](const ReportRun& r) {
    std::vector<std::string> v;
    for (const DatasetSpec& d : r.config.data.datasets) v.push_back(code(d.path));
    return md_join(v, ", ");
  });
  prop("evaluation data", [](const ReportRun& r) {
    std::vector<std::string> v;
    for (const std::string& d : r.perplexity.data) v.push_back(code(d));
    return md_join(v, ", ");
  });
  prop("checkpoint evaluated", [](const ReportRun& r) { return code(r.perplexity.checkpoint); });
  return md;
}

std::string loss_table(const std::vector<ReportRun>& runs, const ReportRun& base) {
  std::string md = md_row({"model", "train loss (mean of the last " + std::to_string(kTailPoints) + " logged steps)",
                           "held-out NLL", "perplexity", "Δ NLL vs " + base.name, "evaluated tokens"}) +
                   md_rule(6);
  for (const ReportRun& r : runs)
    md += md_row({r.name, fmt_fixed(final_train_loss(r), 4), fmt_fixed(r.perplexity.mean_nll, 4),
                  fmt_fixed(r.perplexity.perplexity, 3), fmt_signed(r.perplexity.mean_nll - base.perplexity.mean_nll, 4),
                  fmt_grouped(r.perplexity.tokens)});
  return md;
}

std::string needle_table(const std::vector<ReportRun>& runs) {
  std::string md = md_row(concat({"length", "depth"}, per_run(runs, [](const ReportRun& r) { return r.name; }))) +
                   md_rule(runs.size() + 2);
  // Every (length, depth) any run measured, in the first run's order first.
  std::vector<std::pair<int64_t, double>> cells;
  for (const ReportRun& r : runs)
    for (int64_t L : r.needle.lengths)
      for (double dep : r.needle.depths)
        if (std::find(cells.begin(), cells.end(), std::make_pair(L, dep)) == cells.end()) cells.emplace_back(L, dep);
  for (const auto& [L, dep] : cells) {
    std::vector<std::string> c = {std::to_string(L), fmt_fixed(100 * dep, 0) + "%"};
    for (const ReportRun& r : runs) {
      const NeedleGrid& g = r.needle;
      std::string v = "–";
      for (size_t i = 0; i < g.depths.size(); ++i)
        for (size_t j = 0; j < g.lengths.size(); ++j)
          if (g.depths[i] == dep && g.lengths[j] == L) v = fmt_fixed(g.accuracy[i * g.lengths.size() + j], 3);
      c.push_back(v);
    }
    md += md_row(c);
  }
  return md + md_row(concat({"**mean**", ""}, per_run(runs, [](const ReportRun& r) {
                              return "**" + fmt_fixed(r.needle.mean(), 3) + "**";
                            })));
}

std::string allocation_tables(const std::vector<ReportRun>& runs) {
  // answer / (answer + noise): the answer's share of the context, comparable between maps of different totals.
  std::string md = md_row({"model", "map", "answer span", "noise", "question", "answer / (answer + noise)"}) + md_rule(6);
  for (const ReportRun& r : runs)
    for (const AllocationRow& a : r.allocation)
      if (a.layer == "mean")
        md += md_row({r.name, code(a.map), fmt_fixed(a.answer, 4), fmt_fixed(a.noise, 4), fmt_fixed(a.question, 4),
                      a.answer + a.noise > 0 ? fmt_fixed(a.answer / (a.answer + a.noise), 3) : "–"});
  md += "\nPer layer (" +
        md_join(per_run(runs, [](const ReportRun& r) { return r.name + ": " + code(r.allocation_mean().map); }), ", ") +
        "):\n\n" + md_row({"model", "layer", "answer span", "noise", "question"}) + md_rule(5);
  for (const ReportRun& r : runs)
    for (const AllocationRow& a : r.allocation)
      if (a.layer != "mean" && a.map == r.allocation_mean().map)
        md += md_row({r.name, a.layer, fmt_fixed(a.answer, 4), fmt_fixed(a.noise, 4), fmt_fixed(a.question, 4)});
  return md;
}

std::string outlier_table(const std::vector<ReportRun>& runs) {
  std::string md = md_row({"model", "logit top-1", "logit median", "logit top-1 / median", "hidden top-1",
                           "hidden median", "hidden top-1 / median"}) +
                   md_rule(7);
  auto ratio = [](double top, double median) { return median > 0 ? fmt_fixed(top / median, 1) : std::string("–"); };
  for (const ReportRun& r : runs) {
    const ActivationRow& a = r.activation_all();
    md += md_row({r.name, fmt_fixed(a.logit_top1, 3), fmt_fixed(a.logit_median, 3), ratio(a.logit_top1, a.logit_median),
                  fmt_fixed(a.hidden_top1, 3), fmt_fixed(a.hidden_median, 3), ratio(a.hidden_top1, a.hidden_median)});
  }
  return md;
}

std::string quantization_table(const std::vector<ReportRun>& runs, bool retrieval) {
  std::vector<std::string> head = {"bits"};
  for (const ReportRun& r : runs) {
    head.push_back(r.name + " loss"), head.push_back(r.name + " Δ loss");
    if (retrieval) head.push_back(r.name + " retrieval");
  }
  std::string md = md_row(head) + md_rule(head.size());
  std::vector<std::string> widths;  // fp32 first, then as the runs list them
  for (const ReportRun& r : runs)
    for (const QuantizationRow& q : r.quantization)
      if (std::find(widths.begin(), widths.end(), q.bits) == widths.end()) widths.push_back(q.bits);
  for (const std::string& b : widths) {
    std::vector<std::string> c = {b};
    for (const ReportRun& r : runs) {
      const auto q = std::find_if(r.quantization.begin(), r.quantization.end(),
                                  [&](const QuantizationRow& x) { return x.bits == b; });
      const bool have = q != r.quantization.end();
      c.push_back(have ? fmt_fixed(q->loss, 4) : "–");
      c.push_back(have ? fmt_signed(q->delta_loss, 4) : "–");
      if (retrieval) c.push_back(have && q->retrieval ? fmt_fixed(*q->retrieval, 3) : "–");
    }
    md += md_row(c);
  }
  return md;
}

}  // namespace dt
