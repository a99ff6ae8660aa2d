// The DIFF vs Transformer comparison report (`difftron report`,
// cli/cmd_report.cpp): one Markdown file with PNG plots putting the runs
// read by eval/report/report_inputs.hpp side by side — scale, loss curves, final
// loss and perplexity, needle retrieval heatmaps and accuracy, attention
// allocation, activation outliers, attention-logit quantization — and the
// DIFF Transformer paper's headline claims next to what these runs show.
#pragma once
#include <string>
#include <vector>

#include "eval/report/report_inputs.hpp"

namespace dt {

struct ReportOptions {
  std::string out_dir;
  std::string title = "DIFF Transformer vs Transformer";
  std::vector<std::string> notes;  // extra lines for the scale section (e.g. how held-out data was made)
};

// The file name part for a run name: lower case letters, digits and '-'.
std::string report_slug(const std::string& name);

// The paper's claims checked on these runs: one per claim, "" when the runs are
// not exactly one DIFF model and one baseline. Exposed for the tests.
struct ClaimCheck {
  std::string claim, here, verdict;  // verdict: "same as the paper", "opposite", "tie"
};
std::vector<ClaimCheck> check_paper_claims(const std::vector<ReportRun>& runs);

// Writes out_dir/report.md, loss_curves.png, loss_curves_tail.png,
// quantization.png (and quantization_retrieval.png when the runs measured
// retrieval under quantization) and a copy of each run's needle heatmap
// (needle_heatmap_<slug>.png). Returns the paths written.
std::vector<std::string> write_report(const ReportOptions& opt, const std::vector<ReportRun>& runs);

}  // namespace dt
