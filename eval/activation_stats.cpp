#include "eval/activation_stats.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "eval/analysis_forward.hpp"
#include "eval/analysis_files.hpp"

namespace dt {

ActivationStatsResult collect_activation_stats(const Transformer& model,
                                               const std::vector<std::vector<int32_t>>& windows) {
  if (windows.empty()) fail("activation statistics: no evaluation windows");
  AnalysisOptions opt;
  opt.logit_stats = opt.hidden_stats = true;
  AnalysisForward af(model, opt);
  ActivationStatsResult r;
  for (const std::vector<int32_t>& w : windows) {
    DT_CHECK(w.size() >= 2);
    af.reset();
    af.forward(std::span<const int32_t>(w).first(w.size() - 1));
    ++r.windows;
    r.tokens += int64_t(w.size()) - 1;
  }
  r.logits = af.logit_stats();
  r.hidden = af.hidden_stats();
  for (const AbsStats& s : r.logits) r.logits_all.merge(s);
  for (const AbsStats& s : r.hidden) r.hidden_all.merge(s);
  return r;
}

void print_activation_stats(const ActivationStatsResult& r) {
  std::printf("activation statistics over %lld tokens (%lld windows): |attention logits| (causal q.k/sqrt(d)%s) "
              "and |hidden states| (residual after each layer)\n",
              static_cast<long long>(r.tokens), static_cast<long long>(r.windows),
              r.logits.empty() ? "" : ", every head and map");
  std::printf("  %6s  %12s  %12s  %12s  %12s\n", "layer", "logit_top1", "logit_median", "hidden_top1",
              "hidden_median");
  for (size_t l = 0; l <= r.logits.size(); ++l) {
    const bool all = l == r.logits.size();
    const AbsStats& a = all ? r.logits_all : r.logits[l];
    const AbsStats& h = all ? r.hidden_all : r.hidden[l];
    std::printf("  %6s  %12.4f  %12.4f  %12.4f  %12.4f\n", all ? "all" : std::to_string(l).c_str(), a.max(),
                a.median(), h.max(), h.median());
  }
}

std::string write_activation_stats(const std::string& out_dir, const ActivationStatsResult& r) {
  std::string csv = "layer,logit_top1,logit_median,hidden_top1,hidden_median,logit_count,hidden_count\n";
  char line[256];
  for (size_t l = 0; l <= r.logits.size(); ++l) {
    const bool all = l == r.logits.size();
    const AbsStats& a = all ? r.logits_all : r.logits[l];
    const AbsStats& h = all ? r.hidden_all : r.hidden[l];
    std::snprintf(line, sizeof line, "%s,%.6g,%.6g,%.6g,%.6g,%lld,%lld\n", all ? "all" : std::to_string(l).c_str(),
                  a.max(), a.median(), h.max(), h.median(), static_cast<long long>(a.count()),
                  static_cast<long long>(h.count()));
    csv += line;
  }
  const std::string path = out_dir + "/activation_stats.csv";
  write_text_file(path, csv);
  return path;
}

}  // namespace dt
