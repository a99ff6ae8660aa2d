// The per-step progress line and its JSON-lines twin in the run directory.
#pragma once
#include <cstdint>
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
  // Opens <run_dir>/metrics.jsonl for appending (creates the directory),
  // first keeping only its lines of steps ≤ keep_through (a resumed run: the
  // steps after its checkpoint are trained again and must not appear twice).
  ProgressLog(const std::string& run_dir, int64_t keep_through);
  ~ProgressLog();
  ProgressLog(const ProgressLog&) = delete;
  ProgressLog& operator=(const ProgressLog&) = delete;
  // Prints the step's line and appends its JSON; a failed write (disk full) is an error.
  void write(const StepStats& s);

 private:
  std::string path_;
  int fd_ = -1;
};

std::string format_duration(double seconds);

// One metrics.jsonl line, without the newline: {"step": 1, "loss": 2.345679,
// "lr": 0.0003, "grad_norm": ..., "mean_lambda": ... or null, "tokens_per_s":
// ..., "mfu": ..., "tokens_seen": ..., "step_s": ...}. A value that is inf or
// NaN is written as null, so the line stays JSON.
std::string metrics_line(const StepStats& s);

}  // namespace dt
