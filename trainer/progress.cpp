#include "trainer/progress.hpp"

#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"

namespace dt {

ProgressLog::ProgressLog(const std::string& run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec) fail("cannot create run directory '", run_dir, "': ", ec.message());
  const std::string path = run_dir + "/metrics.jsonl";
  jsonl_.open(path, std::ios::app);
  if (!jsonl_) fail("cannot open '", path, "' for writing");
}

std::string format_duration(double s) {
  char buf[32];
  const long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

void ProgressLog::write(const StepStats& s) {
  char lam[32] = "";
  if (s.has_lambda) std::snprintf(lam, sizeof lam, " | λ %.4f", s.mean_lambda);
  char line[256];
  std::snprintf(line, sizeof line,
                "step %lld/%lld | loss %.4f | lr %.3e | gnorm %.3f%s | %.0f tok/s | MFU %.1f%% | ETA %s",
                (long long)s.step, (long long)s.total_steps, s.loss, s.lr, s.grad_norm, lam, s.tokens_per_s,
                100.0 * s.mfu, format_duration(s.eta_s).c_str());
  log_line(line);
  char json[384];
  std::snprintf(json, sizeof json,
                "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, \"mean_lambda\": %s, "
                "\"tokens_per_s\": %.1f, \"mfu\": %.4f, \"tokens_seen\": %lld, \"step_s\": %.4f}\n",
                (long long)s.step, s.loss, s.lr, s.grad_norm,
                s.has_lambda ? std::to_string(s.mean_lambda).c_str() : "null", s.tokens_per_s, s.mfu,
                (long long)s.tokens_seen, s.step_s);
  jsonl_ << json;
  jsonl_.flush();
}

}  // namespace dt
