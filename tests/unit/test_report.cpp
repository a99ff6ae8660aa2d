// `difftron report`'s readers (eval/report/report_inputs.hpp) and the report itself
// (eval/report/report.hpp) on small hand-written runs in a temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "eval/report/png.hpp"
#include "eval/report/report.hpp"
#include "eval/report/report_markdown.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
// The message of the dt::Error that f throws ("" when it throws none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A training run and its evaluation as `difftron train` and `difftron eval` write
// them, with the given final loss, needle accuracies, top-1 logit and 4-bit loss increase.
struct FakeRun {
  std::string run, eval;
};
FakeRun make_run(const std::string& root, const std::string& kind, double final_loss, double acc, double logit_top1,
                 double delta4) {
  FakeRun f{root + "/" + kind, root + "/" + kind + "/eval"};
  write(f.run + "/config.yaml",
        "model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 2, ffn_hidden: 88, attention: " +
            kind + "}\ntrain: {seq_len: 64, global_batch_size: 4, max_steps: 30, run_dir: " + f.run +
            "}\ndata: {datasets: [{path: data/corpus/quickstart, weight: 1.0}]}\n");
  std::string m;
  for (int s = 10; s <= 30; s += 10)
    m += "{\"step\": " + std::to_string(s) + ", \"loss\": " + std::to_string(final_loss + (30 - s) * 0.1) +
         ", \"lr\": 1e-3, \"grad_norm\": 0.5, \"mean_lambda\": " + (kind == "diff" ? "0.5" : "null") +
         ", \"tokens_per_s\": 1000.0, \"mfu\": 0.1, \"tokens_seen\": " + std::to_string(s * 256) +
         ", \"step_s\": 0.1}\n";
  write(f.run + "/metrics.jsonl", m);
  write(f.eval + "/eval.json", "{\n  \"checkpoint\": \"" + f.run + "/checkpoints/step_30\",\n  \"step\": 30,\n"
        "  \"seq_len\": 64,\n  \"batch\": 4,\n  \"rope_theta\": 10000,\n  \"windows\": 4,\n  \"tokens\": 256,\n"
        "  \"mean_nll\": " + std::to_string(final_loss) + ",\n  \"perplexity\": 7.0,\n  \"seconds\": 1,\n"
        "  \"data\": [\n    {\"path\": \"data/corpus/heldout\", \"windows_available\": 9, \"windows\": 4, \"mean_nll\": 9.9}\n  ]\n}\n");
  write(f.eval + "/needle.csv", "depth,64,128\n0,1.000000,0.500000\n1," + std::to_string(acc) + ",0.000000\n");
  write_png(f.eval + "/needle_heatmap.png", Image(4, 3));
  const std::string map = kind == "diff" ? "diff" : "softmax";
  write(f.eval + "/attention_allocation.csv", "layer,map,answer_span,noise,question\n0," + map +
        ",0.3,0.5,0.2\n1," + map + ",0.1,0.7,0.2\nmean," + map + ",0.2,0.6,0.2\n");
  write(f.eval + "/activation_stats.csv",
        "layer,logit_top1,logit_median,hidden_top1,hidden_median,logit_count,hidden_count\n"
        "0,3,0.5,10,1,100,100\n1," + std::to_string(logit_top1) + ",0.5,20,1,100,100\nall," +
        std::to_string(logit_top1) + ",0.5,20,1,200,200\n");
  write(f.eval + "/quantization.csv", "bits,loss,delta_loss,retrieval_accuracy\nfp32,2.0,0,0.75\n8,2.001,1e-3,0.75\n"
        "4," + std::to_string(2.0 + delta4) + "," + std::to_string(delta4) + ",0.5\n");
  return f;
}

struct ReportTest : ::testing::Test {
  std::string dir;
  void SetUp() override {
    dir = (fs::temp_directory_path() / ("dt_report_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
};

TEST(ReportCsv, ReadsColumnsByNameAndNamesFileAndLineOnBadInput) {
  const CsvTable t = parse_csv("a,b\n1,x\n\n2.5,\n", "t.csv", {"a", "b"});
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.number(1, "a"), 2.5);
  EXPECT_EQ(t.text(0, "b"), "x");
  EXPECT_FALSE(t.maybe_number(1, "b").has_value());
  EXPECT_EQ(error_of([&] { t.number(0, "b"); }), "t.csv:2: column 'b': 'x' is not a finite number");
  EXPECT_EQ(error_of([&] { t.number(1, "b"); }), "t.csv:4: column 'b' is empty, expected a number");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1\n", "r.csv", {}); }), "r.csv:2: 1 fields, expected 2 as in the header");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,2\n", "m.csv", {"c"}); }), "m.csv: no column 'c' in the header");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n", "e.csv", {}); }), "e.csv: no rows after the header");
}

TEST(ReportMarkdown, NumbersAndCells) {
  EXPECT_EQ(fmt_fixed(-0.00001, 4), "0.0000");  // rounds to zero: no sign
  EXPECT_EQ(fmt_signed(0.25, 2), "+0.25");
  EXPECT_EQ(fmt_signed(-0.25, 2), "-0.25");
  EXPECT_EQ(fmt_signed(-0.00001, 4), "+0.0000");
  EXPECT_EQ(fmt_grouped(-1234567), "-1,234,567");
  EXPECT_EQ(fmt_grouped(999), "999");
  EXPECT_EQ(fmt_short(2457600), "2.46M");
  EXPECT_EQ(md_row({"a|b", ""}), "| a\\|b |  |\n");
  EXPECT_EQ(md_rule(2), "| --- | --- |\n");
  EXPECT_EQ(report_slug("DIFF 3B/x"), "diff-3b-x");
}

TEST(ReportJson, TopLevelFieldsIgnoreNestedOnesAndStrings) {
  // "data" (with its own mean_nll) comes first, and a string holds braces and the key name.
  const std::string j =
      "{\"data\": [{\"path\": \"a\\\"{b\", \"mean_nll\": 9}], \"note\": \"mean_nll: 7 }\",\n"
      " \"mean_nll\" : 1.5, \"step\": 4, \"seq_len\": 8, \"windows\": 2, \"tokens\": 16, \"perplexity\": 4.5,"
      " \"checkpoint\": \"ck\", \"lambda\": null}";
  const PerplexitySummary s = parse_eval_json(j, "x.json");
  EXPECT_EQ(s.mean_nll, 1.5);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(s.checkpoint, "ck");
  ASSERT_EQ(s.data.size(), 1u);
  EXPECT_EQ(s.data[0], "a\"{b");
  auto without = [&](const std::string& field) {
    std::string t = j;
    const size_t at = t.find(field);
    return t.replace(at, field.size(), "");
  };
  EXPECT_EQ(error_of([&] { parse_eval_json(without(" \"step\": 4,"), "x.json"); }), "x.json: no field \"step\"");
  std::string bad = j;
  bad.replace(bad.find("\"step\": 4"), 9, "\"step\": \"mean_nll: 7 }\"");
  EXPECT_EQ(error_of([&] { parse_eval_json(bad, "x.json"); }),
            "x.json: field \"step\" is '\"mean_nll: 7 }\"', expected a number");
}

TEST(ReportMetrics, AResumedRunsRepeatedStepsReplaceTheEarlierOnes) {
  const std::string m =
      "{\"step\": 10, \"loss\": 3.0, \"mean_lambda\": 0.5, \"tokens_seen\": 100}\n"
      "{\"step\": 20, \"loss\": 2.5, \"mean_lambda\": 0.5, \"tokens_seen\": 200}\n"
      "{\"step\": 30, \"loss\": 2.4, \"mean_lambda\": 0.5, \"tokens_seen\": 300}\n"
      "{\"step\": 20, \"loss\": 2.6, \"mean_lambda\": null, \"tokens_seen\": 200}\n";  // resumed from step 10
  const std::vector<MetricPoint> p = parse_metrics(m, "metrics.jsonl");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].step, 20);
  EXPECT_EQ(p[1].loss, 2.6);
  EXPECT_TRUE(p[0].mean_lambda.has_value());
  EXPECT_FALSE(p[1].mean_lambda.has_value());
  EXPECT_EQ(error_of([] { parse_metrics("{\"step\": 1, \"loss\": 2}\n", "m.jsonl"); }),
            "m.jsonl:1: no field \"tokens_seen\"");
  EXPECT_EQ(error_of([] { parse_metrics("\n", "m.jsonl"); }), "m.jsonl: no logged steps");
}

TEST(ReportQuantization, FirstRowIsTheFp32ReferenceAndEmptyRetrievalIsNone) {
  const auto q = parse_quantization_csv(
      parse_csv("bits,loss,delta_loss,retrieval_accuracy\nfp32,2,0,\n4,2.5,0.5,\n", "q.csv", {}));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[1].bits, "4");
  EXPECT_EQ(q[1].delta_loss, 0.5);
  EXPECT_FALSE(q[1].retrieval.has_value());
  EXPECT_EQ(error_of([] { parse_quantization_csv(parse_csv("bits,loss,delta_loss,retrieval_accuracy\n4,2,0,\n", "q.csv", {})); }),
            "q.csv: the first row should be the fp32 reference");
}

TEST_F(ReportTest, DiffAndBaselineHaveTheSameParametersBarLambdaAndSubln) {
  const FakeRun d = make_run(dir, "diff", 2.0, 1.0, 5, 0.01), t = make_run(dir, "standard", 2.1, 0.5, 9, 0.3);
  const ReportRun rd = load_report_run("DIFF", d.run, d.eval), rt = load_report_run("Transformer", t.run, t.eval);
  // d = 32 / (2·2) = 8: four λ vectors of d and g_sub of 2d per layer, 2 layers.
  EXPECT_EQ(rd.diff_only_params, 2 * (4 * 8 + 2 * 8));
  EXPECT_EQ(rt.diff_only_params, 0);
  EXPECT_EQ(rd.params - rt.params, rd.diff_only_params);
  EXPECT_EQ(rd.perplexity.data, std::vector<std::string>{"data/corpus/heldout"});
  EXPECT_EQ(rd.perplexity.mean_nll, 2.0);  // the top-level one, not data[0]'s
  EXPECT_EQ(rd.needle.lengths, (std::vector<int64_t>{64, 128}));
  EXPECT_DOUBLE_EQ(rd.needle.mean(), (1.0 + 0.5 + 1.0 + 0.0) / 4);
  EXPECT_EQ(rd.allocation_mean().answer, 0.2);
  EXPECT_EQ(rt.activation_all().logit_top1, 9);
}

TEST_F(ReportTest, ClaimsAreCheckedInThePapersDirection) {
  const FakeRun d = make_run(dir, "diff", 2.0, 1.0, 5, 0.01), t = make_run(dir, "standard", 2.1, 0.5, 9, 0.3);
  const std::vector<ReportRun> runs = {load_report_run("DIFF", d.run, d.eval),
                                       load_report_run("Transformer", t.run, t.eval)};
  const std::vector<ClaimCheck> c = check_paper_claims(runs);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0].verdict, "same as the paper");  // loss 2.0 < 2.1
  EXPECT_EQ(c[1].verdict, "same as the paper");  // accuracy 0.625 > 0.5
  EXPECT_EQ(c[2].verdict, "tie / mixed");        // identical allocations
  EXPECT_EQ(c[3].verdict, "tie / mixed");        // logits 5 < 9 but hidden states equal
  EXPECT_EQ(c[4].verdict, "same as the paper");  // +0.01 < +0.3 at 4 bits
  EXPECT_EQ(c[4].here, "loss increase at 4 bits: DIFF +0.0100 vs Transformer +0.3000");
  // Swapped losses: the other direction. Two DIFF runs: nothing to check.
  const FakeRun worse = make_run(dir + "/w", "diff", 2.2, 1.0, 5, 0.01);
  EXPECT_EQ(check_paper_claims({load_report_run("D", worse.run, worse.eval), runs[1]})[0].verdict, "opposite");
  EXPECT_TRUE(check_paper_claims({runs[0], runs[0]}).empty());
}

TEST_F(ReportTest, WritesEverySectionAndPlotSideBySide) {
  const FakeRun d = make_run(dir, "diff", 2.0, 1.0, 5, 0.01), t = make_run(dir, "standard", 2.1, 0.5, 9, 0.3);
  ReportOptions opt;
  opt.out_dir = dir + "/report";
  opt.notes = {"Held-out data: a test note."};
  fs::create_directories(opt.out_dir);
  const std::vector<std::string> wrote = write_report(
      opt, {load_report_run("DIFF", d.run, d.eval), load_report_run("Transformer", t.run, t.eval)});
  EXPECT_EQ(wrote[0], opt.out_dir + "/report.md");
  for (const char* png : {"loss_curves.png", "loss_curves_tail.png", "quantization.png", "quantization_retrieval.png",
                          "needle_heatmap_diff.png", "needle_heatmap_transformer.png"}) {
    const std::string p = opt.out_dir + "/" + png;
    EXPECT_EQ(slurp(p).substr(0, 4), "\x89PNG") << p;
    EXPECT_NE(std::find(wrote.begin(), wrote.end(), p), wrote.end()) << p;
  }
  const std::string md = slurp(opt.out_dir + "/report.md");
  for (const char* s : {"## Scale", "Small-scale results need not match the paper's", "## The paper's headline claims",
                        "![Training loss](loss_curves.png)", "## Multi-needle retrieval", "![DIFF](needle_heatmap_diff.png)",
                        "## Attention allocation", "## Activation outliers", "![Loss vs bits](quantization.png)",
                        "- Held-out data: a test note.",
                        "| parameters | 45,824 | 45,728 |", "| of which λ (vectors and g_sub, or lambda_proj) | 96 | 0 |"})
    EXPECT_NE(md.find(s), std::string::npos) << s;
  // Values from the inputs: the final loss table (train loss: the mean of all three logged losses 4, 3, 2;
  // Δ vs the baseline), needle means and cells, outlier ratio, 4-bit deltas.
  EXPECT_NE(md.find("| DIFF | 3.0000 | 2.0000 | 7.000 | -0.1000 | 256 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **mean** |  | **0.625** | **0.500** |"), std::string::npos);
  EXPECT_NE(md.find("| 128 | 100% | 0.000 | 0.000 |"), std::string::npos);
  EXPECT_NE(md.find("| DIFF | 5.000 | 0.500 | 10.0 |"), std::string::npos);
  EXPECT_NE(md.find("| 4 | 2.0100 | +0.0100 | 0.500 | 2.3000 | +0.3000 | 0.500 |"), std::string::npos);
}

TEST_F(ReportTest, AMissingEvaluationFileIsOneLineNamingIt) {
  const FakeRun d = make_run(dir, "diff", 2.0, 1.0, 5, 0.01);
  fs::remove(d.eval + "/activation_stats.csv");
  const std::string e = error_of([&] { load_report_run("DIFF", d.run, d.eval); });
  EXPECT_EQ(e.find(d.eval + "/activation_stats.csv: missing (written by difftron eval CKPT --needle"), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  fs::remove(d.run + "/metrics.jsonl");
  EXPECT_EQ(error_of([&] { load_report_run("DIFF", d.run, d.eval); }),
            d.run + "/metrics.jsonl: missing (written by difftron train)");
}

}  // namespace
}  // namespace dt
