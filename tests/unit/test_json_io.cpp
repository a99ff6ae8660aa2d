// JSON that difftron writes and reads through its libraries (core/json.hpp):
// metrics.jsonl stays JSON when a value is inf or NaN, and the JSON-lines
// reader of `prepare` takes the lines its fast path (simdjson) refuses.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "core/json.hpp"
#include "data/jsonl_field.hpp"
#include "eval/report/report_inputs.hpp"
#include "trainer/progress.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

StepStats stats(int64_t step, double loss) {
  StepStats s;
  s.step = step, s.total_steps = 10, s.loss = loss, s.lr = 3e-4, s.grad_norm = 0.5;
  s.tokens_per_s = 1000, s.mfu = 0.1, s.tokens_seen = step * 256, s.step_s = 0.25;
  return s;
}

// Strict JSON (no inf, NaN, Infinity tokens), checked by two parsers that
// share no code: simdjson and nlohmann.
bool strict_json(const std::string& line) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return p.parse(line).get(e) == simdjson::SUCCESS && Json::accept(line);
}

TEST(MetricsLog, InfAndNanValuesAreWrittenAsNullAndTheLineStaysJson) {
  StepStats s = stats(3, kInf);
  s.grad_norm = kNaN, s.tokens_per_s = kInf, s.has_lambda = true, s.mean_lambda = -kInf;
  const std::string line = metrics_line(s);
  ASSERT_TRUE(strict_json(line)) << line;
  const Json j = Json::parse(line);
  for (const char* k : {"loss", "grad_norm", "tokens_per_s", "mean_lambda"}) EXPECT_TRUE(j[k].is_null()) << k;
  EXPECT_EQ(j["step"], 3);
  // The layout launch/gpu_check_summary.sh and tests/cli/train_safety.sh match with sed and grep.
  EXPECT_EQ(line.rfind("{\"step\": 3, \"loss\": null, \"lr\": 0.0003, ", 0), 0u) << line;
  // A finite step keeps the log's usual precision.
  EXPECT_EQ(Json::parse(metrics_line(stats(4, 2.34567891)))["loss"], 2.345679);
}

TEST(MetricsLog, ProgressLogLinesAreReadByTheReportAndTrimmedOnResume) {
  const fs::path dir = fs::temp_directory_path() / ("dt_metrics_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    ProgressLog log(dir.string(), 0);
    log.write(stats(1, 3.0));
    log.write(stats(2, kNaN));  // a diverged step
    log.write(stats(3, 2.5));
  }
  std::vector<MetricPoint> p = read_metrics((dir / "metrics.jsonl").string());
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].loss, 3.0);
  EXPECT_TRUE(std::isnan(p[1].loss));  // null reads back as "not a number"
  EXPECT_EQ(p[2].tokens_seen, 3 * 256);
  { ProgressLog resumed(dir.string(), 2); }  // resuming step_2 drops the lines after it
  p = read_metrics((dir / "metrics.jsonl").string());
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].step, 2);
  fs::remove_all(dir);
}

TEST(DataJsonl, LinesTheFastPathRefusesAreReadToo) {
  std::string out, why;
  // An integer beyond 64 bits elsewhere in the record (simdjson refuses it).
  ASSERT_TRUE(jsonl_string_field(R"({"id": 123456789012345678901234567890, "text": "big"})", "text", out, why)) << why;
  EXPECT_EQ(out, "big");
  // A repeated key: the last one counts, on both paths.
  ASSERT_TRUE(jsonl_string_field(R"({"text": "a", "text": "b"})", "text", out, why)) << why;
  EXPECT_EQ(out, "b");
  ASSERT_TRUE(jsonl_string_field(R"({"text": "a", "text": "b\udc00"})", "text", out, why)) << why;
  EXPECT_EQ(out, "b\xef\xbf\xbd");
}

TEST(DataJsonl, ErrorsAreOneLineWithTheColumn) {
  std::string out, why;
  EXPECT_FALSE(jsonl_string_field("{\"text\": \"a\",\n \"b\": [1,,2]}", "text", out, why));
  EXPECT_EQ(why.rfind("invalid JSON at column 24: ", 0), 0u) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_FALSE(jsonl_string_field("{\"text\": \"caf\xff\"}", "text", out, why));  // not UTF-8
  EXPECT_EQ(why.rfind("invalid JSON at column ", 0), 0u) << why;
  EXPECT_FALSE(jsonl_string_field("[1, 2]", "text", out, why));
  EXPECT_EQ(why, "expected a JSON object, got an array");
}

}  // namespace
}  // namespace dt
