#include "trainer/progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

namespace dt {

namespace {

// The "step" of one metrics.jsonl line, or -1 (a line torn by a crash).
int64_t line_step(const std::string& line) {
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) return -1;
  return j["step"].get<int64_t>();
}

// v with `digits` significant digits, so the log keeps the precision it has
// always had (loss 2.345679, not 2.3456789123456). inf and NaN pass through.
double rounded(double v, int digits) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return std::strtod(buf, nullptr);
}

}  // namespace

ProgressLog::ProgressLog(const std::string& run_dir, int64_t keep_through) : path_(run_dir + "/metrics.jsonl") {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec) fail("cannot create run directory '", run_dir, "': ", ec.message());
  if (std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string kept, line;
    int64_t dropped = 0;
    while (std::getline(in, line)) {
      const int64_t step = line_step(line);
      if (step >= 0 && step <= keep_through) kept += line + "\n";
      else ++dropped;
    }
    if (dropped > 0) {
      write_file_atomically(path_, kept);
      log_info("metrics: dropped ", dropped, " line(s) after step ", keep_through, " from ", path_,
               " (they are trained again)");
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot open ", path_, " for writing: ", std::strerror(errno));
}

ProgressLog::~ProgressLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::string format_duration(double s) {
  char buf[32];
  const long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

std::string metrics_line(const StepStats& s) {
  // A diverged step's loss (or grad norm, ...) is inf or NaN, which JSON
  // cannot hold: nlohmann writes null for them, which every reader of
  // metrics.jsonl (eval/report_inputs, launch/gpu_check_summary.sh) takes as
  // "not a number". mean_lambda is also null for a model without λ.
  Json j;
  j["step"] = s.step;
  j["loss"] = rounded(s.loss, 7);
  j["lr"] = rounded(s.lr, 7);
  j["grad_norm"] = rounded(s.grad_norm, 7);
  j["mean_lambda"] = s.has_lambda ? Json(rounded(s.mean_lambda, 6)) : Json(nullptr);
  j["tokens_per_s"] = rounded(s.tokens_per_s, 7);
  j["mfu"] = rounded(s.mfu, 4);
  j["tokens_seen"] = s.tokens_seen;
  j["step_s"] = rounded(s.step_s, 5);
  return json_line(j);
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
  write_all(fd_, metrics_line(s) + "\n", path_);
}

}  // namespace dt
