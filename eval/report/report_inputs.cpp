#include "eval/report/report_inputs.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "model/registry.hpp"

namespace dt {

namespace {

// The whole file; a missing one fails with what writes it.
std::string slurp(const std::string& path, const char* written_by) {
  if (!std::filesystem::exists(path)) fail(path, ": missing (written by ", written_by, ")");
  return read_whole_file(path, "file");
}

std::optional<double> to_number(std::string_view s) {
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t next = line.find(sep, at);
    out.push_back(line.substr(at, next - at));
    if (next == std::string::npos) return out;
    at = next + 1;
  }
}

}  // namespace

// ---- CSV -------------------------------------------------------------------------------

CsvTable parse_csv(const std::string& text, const std::string& path, const std::vector<std::string>& required) {
  CsvTable t;
  t.path = path;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells = split(line, ',');
    if (t.header.empty()) {
      t.header = std::move(cells);
      continue;
    }
    if (cells.size() != t.header.size())
      fail(path, ":", n, ": ", cells.size(), " fields, expected ", t.header.size(), " as in the header");
    t.rows.push_back(std::move(cells));
    t.lines.push_back(n);
  }
  if (t.header.empty()) fail(path, ": empty (expected a header line)");
  for (const std::string& c : required) t.column(c);
  if (t.rows.empty()) fail(path, ": no rows after the header");
  return t;
}

CsvTable read_csv(const std::string& path, const std::vector<std::string>& required) {
  return parse_csv(slurp(path, "difftron eval"), path, required);
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return int(i);
  fail(path, ": no column '", name, "' in the header");
}

const std::string& CsvTable::text(size_t row, const std::string& col) const { return rows[row][size_t(column(col))]; }

std::optional<double> CsvTable::maybe_number(size_t row, const std::string& col) const {
  const std::string& s = text(row, col);
  if (s.empty()) return std::nullopt;
  const std::optional<double> v = to_number(s);
  if (!v) fail(path, ":", lines[row], ": column '", col, "': '", s, "' is not a finite number");
  return v;
}

double CsvTable::number(size_t row, const std::string& col) const {
  const std::optional<double> v = maybe_number(row, col);
  if (!v) fail(path, ":", lines[row], ": column '", col, "' is empty, expected a number");
  return *v;
}

// ---- JSON ------------------------------------------------------------------------------

namespace {

// The values of `key` in the objects `depth` deep under v (1: v itself).
void collect(const Json& v, std::string_view key, int depth, std::vector<const Json*>& out) {
  if (depth == 1) {
    if (v.is_object())
      for (auto it = v.begin(); it != v.end(); ++it)
        if (it.key() == key) out.push_back(&it.value());
    return;
  }
  if (v.is_structured())
    for (const Json& child : v) collect(child, key, depth - 1, out);
}

// A top-level field as a finite number, or none for null.
std::optional<double> number_field(const Json& obj, std::string_view key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": no field \"", key, "\"");
  if (it->is_null()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    fail(where, ": field \"", key, "\" is '", json_text_of(*it), "', expected a number");
  return it->get<double>();
}

Json parse_object(std::string_view text, const std::string& where) {
  Json j = parse_json(text, where);
  if (!j.is_object()) fail(where, ": ", json_kind(j), ", expected a JSON object");
  return j;
}

}  // namespace

// ---- files -----------------------------------------------------------------------------

namespace {

double required_number(const Json& obj, std::string_view key, const std::string& where) {
  const std::optional<double> v = number_field(obj, key, where);
  if (!v) fail(where, ": field \"", key, "\" is null, expected a number");
  return *v;
}

}  // namespace

std::vector<MetricPoint> parse_metrics(const std::string& text, const std::string& path) {
  std::vector<MetricPoint> pts;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    const Json j = parse_object(line, where);
    MetricPoint p;
    p.step = int64_t(required_number(j, "step", where));
    // null: the step's loss was not finite (trainer/progress.cpp writes inf and NaN as null).
    p.loss = number_field(j, "loss", where).value_or(std::numeric_limits<double>::quiet_NaN());
    p.tokens_seen = int64_t(required_number(j, "tokens_seen", where));
    if (j.contains("mean_lambda")) p.mean_lambda = number_field(j, "mean_lambda", where);
    // A resumed run logs again from its checkpoint: drop what it replaces.
    while (!pts.empty() && pts.back().step >= p.step) pts.pop_back();
    pts.push_back(p);
  }
  if (pts.empty()) fail(path, ": no logged steps");
  return pts;
}

std::vector<MetricPoint> read_metrics(const std::string& path) {
  return parse_metrics(slurp(path, "difftron train"), path);
}

PerplexitySummary parse_eval_json(const std::string& text, const std::string& path) {
  PerplexitySummary s;
  const Json j = parse_object(text, path);
  auto need = [&](const char* key) { return required_number(j, key, path); };
  s.step = int64_t(need("step"));
  s.seq_len = int64_t(need("seq_len"));
  s.windows = int64_t(need("windows"));
  s.tokens = int64_t(need("tokens"));
  s.mean_nll = need("mean_nll");
  s.perplexity = need("perplexity");
  const auto ck = j.find("checkpoint");
  if (ck == j.end()) fail(path, ": no field \"checkpoint\"");
  if (!ck->is_string()) fail(path, ": field \"checkpoint\" is ", json_kind(*ck), ", expected a string");
  s.checkpoint = ck->get<std::string>();
  std::vector<const Json*> paths;  // "data": [{"path": ...}, ...]
  collect(j, "path", 3, paths);
  for (const Json* p : paths) {
    if (!p->is_string()) fail(path, ": a \"path\" in \"data\" is ", json_kind(*p), ", expected a string");
    s.data.push_back(p->get<std::string>());
  }
  return s;
}

double NeedleGrid::mean() const {
  double s = 0;
  for (double a : accuracy) s += a;
  return accuracy.empty() ? 0.0 : s / double(accuracy.size());
}

NeedleGrid parse_needle_csv(const CsvTable& t) {
  NeedleGrid g;
  if (t.header.size() < 2 || t.header[0] != "depth")
    fail(t.path, ": header should be depth,<length>,..., got '", t.header[0], "'");
  for (size_t j = 1; j < t.header.size(); ++j) {
    const std::optional<double> L = to_number(t.header[j]);
    if (!L || *L < 1) fail(t.path, ": column '", t.header[j], "' is not a context length");
    g.lengths.push_back(int64_t(*L));
  }
  for (size_t i = 0; i < t.rows.size(); ++i) {
    g.depths.push_back(t.number(i, "depth"));
    for (size_t j = 1; j < t.header.size(); ++j) g.accuracy.push_back(t.number(i, t.header[j]));
  }
  return g;
}

std::vector<AllocationRow> parse_allocation_csv(const CsvTable& t) {
  std::vector<AllocationRow> out;
  for (size_t i = 0; i < t.rows.size(); ++i)
    out.push_back({t.text(i, "layer"), t.text(i, "map"), t.number(i, "answer_span"), t.number(i, "noise"),
                   t.number(i, "question")});
  return out;
}

std::vector<ActivationRow> parse_activation_csv(const CsvTable& t) {
  std::vector<ActivationRow> out;
  for (size_t i = 0; i < t.rows.size(); ++i)
    out.push_back({t.text(i, "layer"), t.number(i, "logit_top1"), t.number(i, "logit_median"),
                   t.number(i, "hidden_top1"), t.number(i, "hidden_median")});
  return out;
}

std::vector<QuantizationRow> parse_quantization_csv(const CsvTable& t) {
  std::vector<QuantizationRow> out;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const std::string& b = t.text(i, "bits");
    if (b != "fp32" && (!to_number(b) || *to_number(b) < 1))
      fail(t.path, ":", t.lines[i], ": bits '", b, "', expected fp32 or a width");
    out.push_back({b, t.number(i, "loss"), t.number(i, "delta_loss"), t.maybe_number(i, "retrieval_accuracy")});
  }
  if (out[0].bits != "fp32") fail(t.path, ": the first row should be the fp32 reference");
  return out;
}

// ---- one run ---------------------------------------------------------------------------

const ActivationRow& ReportRun::activation_all() const {
  for (const ActivationRow& r : activation)
    if (r.layer == "all") return r;
  fail(eval_dir, "/activation_stats.csv: no row 'all'");
}

const AllocationRow& ReportRun::allocation_mean() const {
  const char* map = is_diff() ? "diff" : "softmax";
  for (const AllocationRow& r : allocation)
    if (r.layer == "mean" && r.map == map) return r;
  fail(eval_dir, "/attention_allocation.csv: no row 'mean,", map, "'");
}

ReportRun load_report_run(const std::string& name, const std::string& run_dir, const std::string& eval_dir) {
  ReportRun r;
  r.name = name, r.run_dir = run_dir, r.eval_dir = eval_dir;
  const std::string cfg = run_dir + "/config.yaml";
  if (!std::filesystem::is_regular_file(cfg)) fail(cfg, ": missing (written by difftron train)");
  r.config = load_saved_config_file(cfg);
  // The tensors a standard-attention model of the same config lacks (λ vectors
  // and g_sub, or DIFF V2's lambda_proj), from the registry, not from names.
  ModelConfig baseline = r.config.model;
  baseline.attention = AttentionKind::Standard;
  std::set<std::string> in_baseline;
  for (const ParamSpec& p : param_registry(baseline)) in_baseline.insert(p.name);
  for (const ParamSpec& p : param_registry(r.config.model)) {
    r.params += p.numel();
    if (!in_baseline.count(p.name)) r.diff_only_params += p.numel();
  }
  r.metrics = read_metrics(run_dir + "/metrics.jsonl");
  const std::string ej = eval_dir + "/eval.json";
  r.perplexity = parse_eval_json(slurp(ej, "difftron eval CKPT --data PATH --out DIR"), ej);
  const char* analyses = "difftron eval CKPT --needle --activation-stats --quantize-logits B,... --out DIR";
  auto csv = [&](const char* file, const std::vector<std::string>& cols) {
    const std::string p = eval_dir + "/" + file;
    return parse_csv(slurp(p, analyses), p, cols);
  };
  r.needle = parse_needle_csv(csv("needle.csv", {"depth"}));
  const std::string heatmap = eval_dir + "/needle_heatmap.png";
  if (!std::filesystem::is_regular_file(heatmap)) fail(heatmap, ": missing (written by ", analyses, ")");
  r.allocation = parse_allocation_csv(csv("attention_allocation.csv", {"layer", "map", "answer_span", "noise", "question"}));
  r.activation = parse_activation_csv(
      csv("activation_stats.csv", {"layer", "logit_top1", "logit_median", "hidden_top1", "hidden_median"}));
  r.quantization = parse_quantization_csv(csv("quantization.csv", {"bits", "loss", "delta_loss", "retrieval_accuracy"}));
  r.activation_all();
  r.allocation_mean();
  return r;
}

}  // namespace dt
