// The per-step progress line and its JSON-lines twin in the run directory.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

namespace dt {

struct StepStats {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, grad_norm = 0, mean_lambda = 0;
  bool has_lambda = false;
  double tokens_per_s = 0, mfu = 0, eta_s = 0, step_s = 0;
  int64_t tokens_seen = 0;
};

class ProgressLog {
 public:
  // Opens <run_dir>/metrics.jsonl for appending (creates the directory).
  explicit ProgressLog(const std::string& run_dir);
  void write(const StepStats& s);

 private:
  std::ofstream jsonl_;
};

std::string format_duration(double seconds);

}  // namespace dt
