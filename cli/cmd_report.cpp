// difftron report --run NAME=RUN_DIR --eval NAME=EVAL_DIR ... --out DIR: the
// side-by-side comparison report of trained and evaluated models (eval/report/report.hpp).
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "eval/report/report.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"

namespace dt {

static const char* kReportUsage =
    "usage: difftron report --run NAME=RUN_DIR --eval NAME=EVAL_DIR [--run ... --eval ...] --out DIR\n"
    "                       [--title TEXT] [--note TEXT ...]\n"
    "\n"
    "Writes DIR/report.md with PNG plots comparing the runs side by side (launch/compare.sh\n"
    "makes one for a DIFF Transformer and a Transformer of the same size): scale, training\n"
    "loss curves, held-out loss and perplexity, needle-retrieval heatmaps and accuracy,\n"
    "attention allocation, activation outliers and attention-logit quantization, with the\n"
    "DIFF Transformer paper's headline claims beside what the runs show.\n"
    "\n"
    "  --run NAME=RUN_DIR    a training run: its train.run_dir (config.yaml, metrics.jsonl);\n"
    "                        NAME labels it in tables and plots (repeatable, in order)\n"
    "  --eval NAME=EVAL_DIR  that run's evaluation directory: the --out of\n"
    "                          difftron eval CKPT --data PATH                (eval.json)\n"
    "                          difftron eval CKPT --data PATH --needle --activation-stats\n"
    "                                        --quantize-logits B,...         (the CSVs and heatmap)\n"
    "  --out DIR             output directory (created)\n"
    "  --title TEXT          the report's title\n"
    "  --note TEXT           a line for the scale section (repeatable)\n"
    "  --help                show this help\n";

namespace {

std::pair<std::string, std::string> name_and_dir(const std::string& opt, const std::string& v) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
    fail(opt, " ", v, ": expected NAME=DIR");
  return {v.substr(0, eq), v.substr(eq + 1)};
}

}  // namespace

int cmd_report(int argc, char** argv) {
  ReportOptions opt;
  std::vector<std::pair<std::string, std::string>> runs, evals;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* what) { return option_value(argc, argv, i, what); };
    if (s == "--help" || s == "-h") {
      std::fputs(kReportUsage, stdout);
      return 0;
    } else if (s == "--run") {
      runs.push_back(name_and_dir(s, value("NAME=RUN_DIR")));
    } else if (s == "--eval") {
      evals.push_back(name_and_dir(s, value("NAME=EVAL_DIR")));
    } else if (s == "--out") {
      opt.out_dir = value("a directory");
    } else if (s == "--title") {
      opt.title = value("a title");
    } else if (s == "--note") {
      opt.notes.push_back(value("a line of text"));
    } else {
      fail("unexpected argument '", s, "' (see difftron report --help)");
    }
  }
  if (runs.empty()) fail("missing --run NAME=RUN_DIR (see difftron report --help)");
  if (opt.out_dir.empty()) fail("missing --out DIR");
  for (size_t i = 0; i < runs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (runs[i].first == runs[j].first) fail("--run ", runs[i].first, " given twice");
  auto eval_of = [&](const std::string& name) {
    std::string dir;
    for (const auto& [n, d] : evals)
      if (n == name) {
        if (!dir.empty()) fail("--eval ", name, " given twice");
        dir = d;
      }
    if (dir.empty()) fail("--run ", name, " has no --eval ", name, "=EVAL_DIR");
    return dir;
  };
  for (const auto& [n, d] : evals) {
    bool known = false;
    for (const auto& r : runs) known |= r.first == n;
    if (!known) fail("--eval ", n, " names no --run");
  }

  std::vector<ReportRun> loaded;
  for (const auto& [name, dir] : runs) loaded.push_back(load_report_run(name, dir, eval_of(name)));
  std::error_code ec;
  std::filesystem::create_directories(opt.out_dir, ec);
  if (ec || !std::filesystem::is_directory(opt.out_dir))
    fail("--out ", opt.out_dir, ": cannot create the directory (", ec.message(), ")");
  const std::vector<std::string> wrote = write_report(opt, loaded);
  std::printf("report: %zu runs; wrote", loaded.size());
  for (size_t i = 0; i < wrote.size(); ++i) std::printf("%s %s", i ? "," : "", wrote[i].c_str());
  std::printf("\n");
  return 0;
}

}  // namespace dt
