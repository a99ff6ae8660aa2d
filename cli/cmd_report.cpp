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

namespace {

std::pair<std::string, std::string> name_and_dir(const std::string& opt, const std::string& v) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
    throw UsageError(opt + " " + v + ": expected NAME=DIR");
  return {v.substr(0, eq), v.substr(eq + 1)};
}

}  // namespace

int cmd_report(int argc, char** argv) {
  ReportOptions opt;
  std::vector<std::pair<std::string, std::string>> runs, evals;
  CommandLine cl("report",
                 "usage: difftron report --run NAME=RUN_DIR --eval NAME=EVAL_DIR [--run ... --eval ...] --out DIR\n"
                 "                       [--title TEXT] [--note TEXT ...]\n",
                 "Writes DIR/report.md with PNG plots comparing the runs side by side (launch/compare.sh\n"
                 "makes one for a DIFF Transformer and a Transformer of the same size): scale, training\n"
                 "loss curves, held-out loss and perplexity, needle-retrieval heatmaps and accuracy,\n"
                 "attention allocation, activation outliers and attention-logit quantization, with the\n"
                 "DIFF Transformer paper's headline claims beside what the runs show.\n");
  cl.value("--run", "NAME=RUN_DIR",
           "a training run: its train.run_dir (config.yaml, metrics.jsonl);\n"
           "NAME labels it in tables and plots (repeatable, in order)",
           [&runs](const std::string& v) { runs.push_back(name_and_dir("--run", v)); });
  cl.value("--eval", "NAME=EVAL_DIR",
           "that run's evaluation directory: the --out of\n"
           "  difftron eval CKPT --data PATH                (eval.json)\n"
           "  difftron eval CKPT --data PATH --needle --activation-stats\n"
           "                --quantize-logits B,...         (the CSVs and heatmap)",
           [&evals](const std::string& v) { evals.push_back(name_and_dir("--eval", v)); });
  cl.text("--out", opt.out_dir, "DIR", "output directory (created)");
  cl.text("--title", opt.title, "TEXT", "the report's title");
  cl.texts("--note", opt.notes, "TEXT", "a line for the scale section (repeatable)");
  if (!cl.parse(argc, argv)) return 0;
  if (runs.empty()) throw UsageError("missing --run NAME=RUN_DIR (" + cl.see_help() + ")");
  if (opt.out_dir.empty()) throw UsageError("missing --out DIR (" + cl.see_help() + ")");
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
