// The needle-retrieval outputs (eval/needle_eval.hpp): printed table, CSVs and heatmap.
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "eval/analysis_files.hpp"
#include "eval/needle_eval.hpp"
#include "eval/report/plot.hpp"

namespace dt {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Whether v is an arithmetic progression (any single value counts).
bool evenly_spaced(const std::vector<double>& v) {
  for (size_t i = 2; i < v.size(); ++i)
    if (std::abs((v[i] - v[i - 1]) - (v[1] - v[0])) > 1e-9 * std::max(1.0, std::abs(v[1] - v[0]))) return false;
  return v.size() < 2 || v[1] != v[0];
}

}  // namespace

void print_needle(const NeedleEvalResult& r) {
  std::printf("needle retrieval accuracy (N = %d needles, R = %d queried; %lld answers per cell, exact match):\n",
              r.needles, r.queries, static_cast<long long>(r.samples_per_cell));
  std::printf("  %8s", "depth");
  for (int64_t L : r.lengths) std::printf("  %7lld", static_cast<long long>(L));
  std::printf("\n");
  for (size_t i = 0; i < r.depths.size(); ++i) {
    std::printf("  %7.0f%%", 100 * r.depths[i]);
    for (size_t j = 0; j < r.lengths.size(); ++j) std::printf("  %7.2f", r.accuracy[i * r.lengths.size() + j]);
    std::printf("\n");
  }
  std::printf("  mean accuracy %.4f\n", r.mean_accuracy());
  if (r.maps.empty()) return;
  std::printf("attention allocation at the answer position (mean over heads, %lld samples):\n",
              static_cast<long long>(r.allocation_samples));
  std::printf("  %6s  %-8s  %11s  %9s  %9s\n", "layer", "map", "answer_span", "noise", "question");
  for (size_t l = 0; l <= r.allocation[0].size(); ++l)
    for (size_t m = 0; m < r.maps.size(); ++m) {
      const bool mean = l == r.allocation[0].size();
      const AllocationShare a = mean ? r.layer_mean(m) : r.allocation[m][l];
      std::printf("  %6s  %-8s  %11.4f  %9.4f  %9.4f\n", mean ? "mean" : std::to_string(l).c_str(),
                  r.maps[m].c_str(), a.answer, a.noise, a.question);
    }
}

std::vector<std::string> write_needle(const std::string& out_dir, const NeedleEvalResult& r,
                                      const std::string& model_label) {
  std::vector<std::string> wrote;
  std::string csv = "depth";
  for (int64_t L : r.lengths) csv += "," + std::to_string(L);
  csv += "\n";
  for (size_t i = 0; i < r.depths.size(); ++i) {
    csv += fmt("%g", r.depths[i]);
    for (size_t j = 0; j < r.lengths.size(); ++j) csv += fmt(",%.6f", r.accuracy[i * r.lengths.size() + j]);
    csv += "\n";
  }
  write_text_file(out_dir + "/needle.csv", csv);
  wrote.push_back(out_dir + "/needle.csv");

  // Rows: depths top-down in percent; columns: lengths on a linear axis when
  // evenly spaced, on log2 when each doubles, else by index.
  Heatmap h;
  h.rows = int(r.depths.size()), h.cols = int(r.lengths.size());
  h.values = r.accuracy;
  h.v_min = 0, h.v_max = 1;
  h.title = "Needle retrieval accuracy, " + model_label + " (N=" + std::to_string(r.needles) +
            ", R=" + std::to_string(r.queries) + ")";
  std::vector<double> depth_pct, len, log_len;
  for (double d : r.depths) depth_pct.push_back(100 * d);
  for (int64_t L : r.lengths) len.push_back(double(L)), log_len.push_back(std::log2(double(L)));
  if (evenly_spaced(depth_pct)) {
    h.y_first = depth_pct[0], h.y_step = depth_pct.size() > 1 ? depth_pct[1] - depth_pct[0] : 1;
    h.y_label = "Needle depth (%)";
  } else {
    h.y_label = "Needle depth (row index)";
  }
  if (evenly_spaced(len)) {
    h.x_first = len[0], h.x_step = len.size() > 1 ? len[1] - len[0] : 1;
    h.x_label = "Context length (tokens)";
  } else if (evenly_spaced(log_len)) {
    h.x_first = log_len[0], h.x_step = log_len[1] - log_len[0];
    h.x_label = "Context length (log2 tokens: " + fmt("%g", log_len[0]) + " = " + std::to_string(r.lengths[0]) +
                " tokens)";
  } else {
    h.x_label = "Context length (column index, see needle.csv)";
  }
  h.save(out_dir + "/needle_heatmap.png");
  wrote.push_back(out_dir + "/needle_heatmap.png");

  if (!r.maps.empty()) {
    std::string a = "layer,map,answer_span,noise,question\n";
    for (size_t l = 0; l <= r.allocation[0].size(); ++l)
      for (size_t m = 0; m < r.maps.size(); ++m) {
        const bool mean = l == r.allocation[0].size();
        const AllocationShare s = mean ? r.layer_mean(m) : r.allocation[m][l];
        a += (mean ? std::string("mean") : std::to_string(l)) + "," + r.maps[m] + fmt(",%.6f", s.answer) +
             fmt(",%.6f", s.noise) + fmt(",%.6f", s.question) + "\n";
      }
    write_text_file(out_dir + "/attention_allocation.csv", a);
    wrote.push_back(out_dir + "/attention_allocation.csv");
  }
  return wrote;
}

}  // namespace dt
