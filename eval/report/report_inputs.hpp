// What `difftron report` (eval/report/report.hpp) reads: a training run directory
// (config.yaml and metrics.jsonl, trainer/progress.cpp) and an evaluation
// directory written by `difftron eval` (eval.json of the perplexity pass and
// the analyses' needle.csv, needle_heatmap.png, attention_allocation.csv,
// activation_stats.csv, quantization.csv). JSON is parsed by nlohmann-json
// (core/json.hpp), CSV here; both strictly: a missing file, column or field
// is a one-line dt::Error naming the file (and line), with the eval option
// that writes it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace dt {

// ---- generic readers ---------------------------------------------------------------

// A comma-separated table with a header line. Cells are not quoted (eval's
// CSVs hold numbers and plain names); blank lines are skipped.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> lines;  // the file line of each row, for messages

  int column(const std::string& name) const;  // fails naming the file and the column
  const std::string& text(size_t row, const std::string& col) const;
  double number(size_t row, const std::string& col) const;           // a finite number, or fails
  std::optional<double> maybe_number(size_t row, const std::string& col) const;  // empty cell: none
};
CsvTable read_csv(const std::string& path, const std::vector<std::string>& required_columns);
CsvTable parse_csv(const std::string& text, const std::string& path, const std::vector<std::string>& required_columns);

// ---- the files ---------------------------------------------------------------------

// One logged training step (metrics.jsonl). A resumed run appends steps it had
// already logged before the crash; the later lines win.
struct MetricPoint {
  int64_t step = 0, tokens_seen = 0;
  double loss = 0;  // NaN where the line has null: the step's loss was inf or NaN
  std::optional<double> mean_lambda;
};
std::vector<MetricPoint> read_metrics(const std::string& path);
std::vector<MetricPoint> parse_metrics(const std::string& text, const std::string& path);

// eval.json of the perplexity pass.
struct PerplexitySummary {
  std::string checkpoint;
  int64_t step = 0, seq_len = 0, windows = 0, tokens = 0;
  double mean_nll = 0, perplexity = 0;
  std::vector<std::string> data;  // the evaluated shard paths
};
PerplexitySummary parse_eval_json(const std::string& text, const std::string& path);

struct NeedleGrid {  // needle.csv: accuracy by depth (rows) and context length (columns)
  std::vector<double> depths;
  std::vector<int64_t> lengths;
  std::vector<double> accuracy;  // depths × lengths, row-major
  double mean() const;
};
NeedleGrid parse_needle_csv(const CsvTable& t);

struct AllocationRow {  // attention_allocation.csv
  std::string layer, map;  // layer "mean": averaged over layers
  double answer = 0, noise = 0, question = 0;
};
std::vector<AllocationRow> parse_allocation_csv(const CsvTable& t);

struct ActivationRow {  // activation_stats.csv
  std::string layer;    // "all": every layer merged
  double logit_top1 = 0, logit_median = 0, hidden_top1 = 0, hidden_median = 0;
};
std::vector<ActivationRow> parse_activation_csv(const CsvTable& t);

struct QuantizationRow {  // quantization.csv; the first row is the fp32 reference
  std::string bits;       // "fp32" or a width
  double loss = 0, delta_loss = 0;
  std::optional<double> retrieval;
};
std::vector<QuantizationRow> parse_quantization_csv(const CsvTable& t);

// ---- one model of the report ---------------------------------------------------------

struct ReportRun {
  std::string name, run_dir, eval_dir;
  Config config;                // run_dir/config.yaml
  int64_t params = 0;           // every parameter of the model (param_registry)
  int64_t diff_only_params = 0;  // tensors the baseline lacks: λ vectors and g_sub, or lambda_proj (0 for it)
  std::vector<MetricPoint> metrics;
  PerplexitySummary perplexity;
  NeedleGrid needle;
  std::vector<AllocationRow> allocation;
  std::vector<ActivationRow> activation;
  std::vector<QuantizationRow> quantization;

  // DIFF or DIFF V2: attention as a difference of two softmax maps.
  bool is_diff() const { return config.model.attention != AttentionKind::Standard; }
  const ActivationRow& activation_all() const;  // the "all" row
  // The "mean" row of the map that carries the model's attention: "diff" for
  // DIFF, "softmax" for the baseline.
  const AllocationRow& allocation_mean() const;
};

// Reads everything above; any missing or malformed file is a one-line error.
ReportRun load_report_run(const std::string& name, const std::string& run_dir, const std::string& eval_dir);

}  // namespace dt
