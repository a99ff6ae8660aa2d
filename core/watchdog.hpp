// The progress watchdog (runtime.step_timeout_s). A rank that stops making
// progress (SIGSTOP, a stuck collective, a dead node that keeps its sockets
// open) would otherwise hang the whole job forever. Each rank's watchdog
// thread ends its process, with one line naming the rank, the step and the
// last phase it entered, when no step completes in time; mpirun then takes the
// rest of the job down and a scheduler's restart with --resume auto continues
// from the last checkpoint. A stopped rank cannot run its own watchdog, but its
// peers, blocked in a collective with it, do.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace dt {

// What this rank is doing now, for the watchdog's message: the trainer's phase
// ("forward", "checkpoint save", ...) and, inside it, the blocking collective.
// Both take string literals (or other static strings); setting one is two
// relaxed atomic stores.
void watch_phase(const char* phase, int64_t detail = -1);
struct WatchCollective {
  WatchCollective(const char* op, const char* group);
  ~WatchCollective();
};

// The process exit code of a watchdog abort (EX_TEMPFAIL: a restart may succeed).
constexpr int kWatchdogExit = 75;

class Watchdog {
 public:
  // fixed_s > 0: that timeout for every step. 0: automatic, 10× the median
  // step time once warm_steps steps have been timed (at least min_s), and
  // before that (start-up, first steps) initial_s.
  struct Options {
    double fixed_s = 0;
    double min_s = 300;
    double initial_s = 1800;
    int warm_steps = 3;
  };
  Watchdog(Options o, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // A step began: the deadline is now + the current timeout.
  void start_step(int64_t step);
  // The step ended after step_s seconds (timed for the automatic timeout).
  void finish_step(double step_s);
  // A checkpoint save may legitimately take much longer than a step: it gets
  // the step timeout or 10× the longest save so far, whichever is longer
  // (initial_s before the first save has been timed).
  void start_save();
  void finish_save(double save_s);
  // The timeout the next step gets.
  double timeout_s() const;

 private:
  void run();
  Options opt_;
  int rank_;
  std::vector<double> step_times_;
  bool warmed_up_ = false;
  double longest_save_s_ = -1;
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<int64_t> step_{0};
  std::atomic<double> armed_s_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dt
