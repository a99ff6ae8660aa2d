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
#include "core/log.hpp"

namespace dt {

namespace {

// The "step" of one metrics.jsonl line, or -1.
int64_t line_step(const std::string& line) {
  static const std::string key = "{\"step\": ";
  if (line.rfind(key, 0) != 0) return -1;
  return std::strtoll(line.c_str() + key.size(), nullptr, 10);
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
  write_all(fd_, json, path_);
}

}  // namespace dt
