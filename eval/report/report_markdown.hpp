// Markdown pieces of the comparison report (eval/report/report.cpp puts them
// together with the prose and plots): number formats, table rows, and the
// side-by-side table of each section, one column (or column group) per run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/report/report_inputs.hpp"

namespace dt {

std::string fmt_fixed(double v, int decimals);   // 1.5, 2 -> "1.50"
std::string fmt_signed(double v, int decimals);  // 0.1, 2 -> "+0.10"
std::string fmt_grouped(int64_t v);              // 1234567 -> "1,234,567"
std::string fmt_short(double v);                 // 2457600 -> "2.46M"

// "| a | b |\n" (a '|' inside a cell escaped) and its "| --- | --- |\n" rule.
std::string md_row(const std::vector<std::string>& cells);
std::string md_rule(size_t columns);
std::string md_join(const std::vector<std::string>& parts, const std::string& sep);

// The training loss at the end of a run: the mean of the last (up to)
// kTailPoints logged steps, steadier than one batch's loss.
constexpr size_t kTailPoints = 10;
double final_train_loss(const ReportRun& r);

// The section tables. `base` is the run deltas refer to.
std::string scale_table(const std::vector<ReportRun>& runs);          // a row per property, a column per run
std::string loss_table(const std::vector<ReportRun>& runs, const ReportRun& base);
std::string needle_table(const std::vector<ReportRun>& runs);         // a row per (length, depth), then the means
std::string allocation_tables(const std::vector<ReportRun>& runs);    // layer means of every map, then per layer
std::string outlier_table(const std::vector<ReportRun>& runs);
std::string quantization_table(const std::vector<ReportRun>& runs, bool retrieval);  // a row per bit width

}  // namespace dt
