#include "core/watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace dt {

namespace {

std::atomic<const char*> g_phase{"start-up"};
std::atomic<int64_t> g_detail{-1};
std::atomic<const char*> g_op{nullptr};
std::atomic<const char*> g_group{nullptr};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void watch_phase(const char* phase, int64_t detail) {
  g_detail.store(detail, std::memory_order_relaxed);
  g_phase.store(phase, std::memory_order_relaxed);
}

WatchCollective::WatchCollective(const char* op, const char* group) {
  g_group.store(group, std::memory_order_relaxed);
  g_op.store(op, std::memory_order_relaxed);
}

WatchCollective::~WatchCollective() { g_op.store(nullptr, std::memory_order_relaxed); }

Watchdog::Watchdog(Options o, int rank) : opt_(o), rank_(rank) {
  armed_s_ = timeout_s();
  deadline_ns_ = now_ns() + int64_t(armed_s_.load() * 1e9);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

double Watchdog::timeout_s() const {
  if (opt_.fixed_s > 0) return opt_.fixed_s;
  if (int(step_times_.size()) < opt_.warm_steps) return opt_.initial_s;
  std::vector<double> t = step_times_;
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return std::max(opt_.min_s, 10.0 * t[t.size() / 2]);
}

void Watchdog::start_step(int64_t step) {
  step_ = step;
  armed_s_ = timeout_s();
  deadline_ns_ = now_ns() + int64_t(armed_s_.load() * 1e9);
}

void Watchdog::finish_step(double step_s) {
  // The first step of a process pays for warm-up (allocations, first touch,
  // plan caches): it is not timed.
  static constexpr size_t kKept = 101;
  if (warmed_up_) step_times_.push_back(step_s);
  warmed_up_ = true;
  if (step_times_.size() > kKept) step_times_.erase(step_times_.begin());
  start_step(step_ + 1);
}

void Watchdog::start_save() {
  armed_s_ = std::max(timeout_s(), longest_save_s_ < 0 ? opt_.initial_s : 10 * longest_save_s_);
  deadline_ns_ = now_ns() + int64_t(armed_s_.load() * 1e9);
}

void Watchdog::finish_save(double save_s) {
  longest_save_s_ = std::max(longest_save_s_, save_s);
  start_step(step_);
}

void Watchdog::run() {
  constexpr int64_t kPollNs = 250'000'000;
  std::unique_lock<std::mutex> lock(mu_);
  int64_t asked = 0, last_wake = now_ns();
  while (!stop_) {
    // Waking much later than asked means this process was suspended (SIGSTOP,
    // a frozen VM): that time is not this rank's lack of progress, and its
    // peers' watchdogs judge it. The deadline moves by it.
    const int64_t woke = now_ns(), late = woke - last_wake - asked;
    if (late > kPollNs) deadline_ns_ += late;
    last_wake = woke;
    const int64_t left = deadline_ns_.load() - woke;
    if (left > 0) {
      asked = std::min(left, kPollNs);
      cv_.wait_for(lock, std::chrono::nanoseconds(asked));
      continue;
    }
    char where[256];
    const char* op = g_op.load();
    const int64_t detail = g_detail.load();
    int n = std::snprintf(where, sizeof where, "%s", g_phase.load());
    if (detail >= 0 && n < int(sizeof where)) n += std::snprintf(where + n, sizeof where - n, " %lld", (long long)detail);
    if (op && n < int(sizeof where))
      std::snprintf(where + n, sizeof where - n, ", in %s over the %s group", op, g_group.load());
    char line[512];
    const int len = std::snprintf(line, sizeof line,
                                  "difftron train: watchdog on rank %d: step %lld made no progress in %.0f s "
                                  "(runtime.step_timeout_s); last phase: %s; ending the job (continue with "
                                  "--resume auto)\n",
                                  rank_, (long long)step_.load() + 1, armed_s_.load(), where);
    // write(2) and _exit: the main thread may hold any lock (stdio's included).
    if (::write(STDERR_FILENO, line, size_t(std::min<int>(len, int(sizeof line) - 1))) < 0) {
    }
    std::_Exit(kWatchdogExit);
  }
}

}  // namespace dt
