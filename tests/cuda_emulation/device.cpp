// The emulated device (device.hpp): stream queues, events, vector clocks and
// the worker thread that runs ops out of the host thread's sight.
#include "device.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace emu {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Op {
  Accessor acc;
  VectorClock vc{};
  std::function<Progress()> run;
  SteadyClock::time_point retry_at{};  // a blocked op is polled again after this
};

struct Stream {
  int agent = 0;
  bool legacy = false, blocking = true, destroyed = false;
  std::string name;
  std::deque<std::unique_ptr<Op>> queue;
  VectorClock tail{};  // what the next op queued here must wait for
};

class Device {
 public:
  Device() {
    legacy_.agent = 1;
    legacy_.legacy = true;
    legacy_.name = "the legacy default stream";
    streams_.push_back(&legacy_);
    for (int a = kMaxAgents - 1; a >= 2; --a) free_agents_.push_back(a);
    start_ = SteadyClock::now();
    worker_ = std::thread([this] { loop(); });
  }
  // At exit the worker finishes the op it is running and abandons the rest,
  // before static destructors run under it.
  void shutdown() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  Stream legacy_;
  std::vector<Stream*> streams_;
  std::vector<int> free_agents_;
  std::array<uint32_t, kMaxAgents> issued_{}, completed_{};
  VectorClock host_{};
  uint32_t next_id_ = 1;
  uint64_t syncs_ = 0;
  cudaError_t sticky_ = cudaSuccess;
  std::string sticky_message_;
  int reports_ = 0;
  SteadyClock::time_point start_;
  std::set<std::string> names_;  // interned op names (reports keep pointers)
  bool stop_ = false;
  std::thread worker_;

  Stream* resolve(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &legacy_;
    return reinterpret_cast<Stream*>(s);
  }
  const char* intern(std::string name) { return names_.insert(std::move(name)).first->c_str(); }

  bool ready(const Op& op) const {
    for (int a = 1; a < kMaxAgents; ++a)
      if (a != op.acc.agent && op.vc[a] > completed_[a]) return false;
    return true;
  }

  void fail(const std::string& message) {  // with mu_ held
    if (reports_++ < 8) std::fprintf(stderr, "cuda emulation: %s\n", message.c_str());
    if (sticky_ == cudaSuccess) {
      sticky_ = cudaErrorLaunchFailure;
      sticky_message_ = message;
    }
  }

  void loop();
  void wait(const std::function<bool()>& done, const char* what);
};

Device& device() {
  static Device* d = [] {
    auto* dev = new Device;  // never destroyed: the worker may outlive static destructors otherwise
    std::atexit([] { device().shutdown(); });
    return dev;
  }();
  return *d;
}

void Device::loop() {
  std::unique_lock<std::mutex> l(mu_);
  size_t next = 0;
  for (;;) {
    if (stop_) return;
    Stream* pick = nullptr;
    bool blocked = false;
    const auto now = SteadyClock::now();
    for (size_t k = 0; k < streams_.size() && !pick; ++k) {
      Stream* s = streams_[(next + k) % streams_.size()];
      if (s->queue.empty() || !ready(*s->queue.front())) continue;
      if (s->queue.front()->retry_at > now) {
        blocked = true;
        continue;
      }
      pick = s;
      next = (next + k + 1) % streams_.size();
    }
    if (!pick) {
      if (blocked) work_cv_.wait_for(l, std::chrono::microseconds(200));
      else work_cv_.wait(l);
      continue;
    }
    Op& op = *pick->queue.front();
    Progress p = Progress::kDone;
    if (sticky_ == cudaSuccess) {  // after a failure, queued work is dropped as on a GPU
      l.unlock();
      mem::begin_op(op.acc);
      try {
        p = op.run();
      } catch (const std::exception& e) {
        op_fault(std::string("exception: ") + e.what());
      }
      mem::end_op();
      l.lock();
    }
    if (p == Progress::kBlocked) {
      op.retry_at = SteadyClock::now() + std::chrono::microseconds(100);
      continue;
    }
    completed_[pick->agent] = op.acc.clock;
    pick->queue.pop_front();
    if (pick->destroyed && pick->queue.empty()) {
      free_agents_.push_back(pick->agent);
      std::erase(streams_, pick);
      delete pick;
    }
    done_cv_.notify_all();
  }
}

void Device::wait(const std::function<bool()>& done, const char* what) {
  std::unique_lock<std::mutex> l(mu_);
  ++syncs_;
  const auto warn_at = SteadyClock::now() + std::chrono::seconds(600);
  while (!done()) {
    if (done_cv_.wait_until(l, warn_at) == std::cv_status::timeout && !done()) {
      std::string s = std::string("the host has waited 600 s in ") + what + "; queued:";
      for (Stream* st : streams_)
        if (!st->queue.empty()) s += " [" + st->name + ": " + st->queue.front()->acc.name + ", " +
                                     std::to_string(st->queue.size()) + " ops]";
      std::fprintf(stderr, "cuda emulation: %s\n", s.c_str());
      std::abort();
    }
  }
}

}  // namespace

Queued enqueue_op(cudaStream_t h, std::string name, std::function<Progress()> run) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  Stream* s = d.resolve(h);
  auto op = std::make_unique<Op>();
  ++d.host_[0];
  op->vc = s->tail;
  join(op->vc, d.host_);
  if (s->legacy) {
    for (Stream* b : d.streams_)
      if (b->blocking && !b->legacy) join(op->vc, b->tail);
  } else if (s->blocking) {
    join(op->vc, d.legacy_.tail);
  }
  op->vc[s->agent] = ++d.issued_[s->agent];
  s->tail = op->vc;
  op->acc = {d.next_id_++, s->agent, op->vc[s->agent], &op->vc, d.intern(std::move(name)), s->name.c_str()};
  op->run = std::move(run);
  const Queued q{s->agent, op->acc.clock, op->vc};
  s->queue.push_back(std::move(op));
  d.work_cv_.notify_one();
  return q;
}

void enqueue(cudaStream_t s, std::string name, std::function<Progress()> run) {
  enqueue_op(s, std::move(name), std::move(run));
}

cudaStream_t create_stream(bool non_blocking) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  if (d.free_agents_.empty()) {
    std::fprintf(stderr, "cuda emulation: more than %d live streams\n", kMaxAgents - 2);
    std::abort();
  }
  auto* s = new Stream;
  s->agent = d.free_agents_.back();
  d.free_agents_.pop_back();
  s->blocking = !non_blocking;
  s->name = "stream " + std::to_string(s->agent) + (non_blocking ? " (non-blocking)" : " (blocking)");
  d.streams_.push_back(s);
  return reinterpret_cast<cudaStream_t>(s);
}

bool valid_stream(cudaStream_t h) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  Stream* s = d.resolve(h);
  return std::find(d.streams_.begin(), d.streams_.end(), s) != d.streams_.end() && !s->destroyed;
}

cudaError_t destroy_stream(cudaStream_t h) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  Stream* s = d.resolve(h);
  if (s->legacy || s->destroyed || std::find(d.streams_.begin(), d.streams_.end(), s) == d.streams_.end())
    return cudaErrorInvalidResourceHandle;
  s->destroyed = true;
  if (s->queue.empty()) {
    d.free_agents_.push_back(s->agent);
    std::erase(d.streams_, s);
    delete s;
  }
  return cudaSuccess;
}

void record_event(Event* e, cudaStream_t s) {
  const Queued q = enqueue_op(s, "cudaEventRecord", [t = e->time_ms, &d = device()] {
    *t = std::chrono::duration<double, std::milli>(SteadyClock::now() - d.start_).count();
    return Progress::kDone;
  });
  std::lock_guard<std::mutex> l(device().mu_);
  e->recorded = true;
  e->agent = q.agent;
  e->clock = q.clock;
  e->vc = q.vc;
}

void stream_wait_event(cudaStream_t h, const Event* e) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  if (!e->recorded) return;  // as CUDA: waiting on a never-recorded event waits for nothing
  join(d.resolve(h)->tail, e->vc);
}

bool event_done(const Event* e) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  return !e->recorded || d.completed_[e->agent] >= e->clock;
}

cudaError_t synchronize_stream(cudaStream_t h) {
  Device& d = device();
  Stream* s;
  uint32_t target;
  VectorClock vc;
  {
    std::lock_guard<std::mutex> l(d.mu_);
    s = d.resolve(h);
    target = d.issued_[s->agent];
    vc = s->tail;
  }
  const int agent = s->agent;
  d.wait([&] { return d.completed_[agent] >= target || d.sticky_ != cudaSuccess; }, "cudaStreamSynchronize");
  std::lock_guard<std::mutex> l(d.mu_);
  join(d.host_, vc);
  return d.sticky_;
}

cudaError_t synchronize_event(const Event* e) {
  Device& d = device();
  if (!e->recorded) return sticky_error();
  d.wait([&] { return d.completed_[e->agent] >= e->clock || d.sticky_ != cudaSuccess; }, "cudaEventSynchronize");
  std::lock_guard<std::mutex> l(d.mu_);
  join(d.host_, e->vc);
  return d.sticky_;
}

cudaError_t wait_for(const Queued& q) {
  Device& d = device();
  d.wait([&] { return d.completed_[q.agent] >= q.clock || d.sticky_ != cudaSuccess; }, "a blocking copy");
  std::lock_guard<std::mutex> l(d.mu_);
  join(d.host_, q.vc);
  return d.sticky_;
}

cudaError_t synchronize_device() {
  Device& d = device();
  std::array<uint32_t, kMaxAgents> target;
  {
    std::lock_guard<std::mutex> l(d.mu_);
    target = d.issued_;
  }
  d.wait(
      [&] {
        if (d.sticky_ != cudaSuccess) return true;
        for (int a = 1; a < kMaxAgents; ++a)
          if (d.completed_[a] < target[a]) return false;
        return true;
      },
      "cudaDeviceSynchronize");
  std::lock_guard<std::mutex> l(d.mu_);
  for (Stream* s : d.streams_) join(d.host_, s->tail);
  return d.sticky_;
}

cudaError_t sticky_error() {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  return d.sticky_;
}

const std::string& sticky_message() { return device().sticky_message_; }

void reset_after_failure() {
  Device& d = device();
  d.wait(  // the worker drops queued ops while the error is set
      [&] {
        for (int a = 1; a < kMaxAgents; ++a)
          if (d.completed_[a] < d.issued_[a]) return false;
        return true;
      },
      "reset_after_failure");
  std::lock_guard<std::mutex> l(d.mu_);
  --d.syncs_;
  for (Stream* s : d.streams_) join(d.host_, s->tail);
  d.sticky_ = cudaSuccess;
  d.sticky_message_.clear();
  d.reports_ = 0;
  record_error(cudaSuccess, "");
}

void access(const void* p, size_t bytes, bool write) { mem::check(p, bytes, write); }

void op_fault(const std::string& message) {
  Device& d = device();
  const Accessor* a = mem::current();
  std::lock_guard<std::mutex> l(d.mu_);
  d.fail(std::string(a ? a->name : "an op") + " on " + (a ? a->stream : "?") + " failed: " + message);
}

void report_fault(const std::string& message) { op_fault(message); }

void report_race(const std::string& message) {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  d.fail(message);
}

const char* running_op_name() {
  const Accessor* a = mem::current();
  return a ? a->name : "";
}

void host_access(const void* p, size_t bytes, bool write) {
  Device& d = device();
  Accessor a;
  VectorClock vc;
  {
    std::lock_guard<std::mutex> l(d.mu_);
    vc = d.host_;
    a.id = d.next_id_++;
    a.agent = 0;
    a.clock = ++d.host_[0];
    vc[0] = a.clock;
  }
  a.vc = &vc;
  a.name = write ? "the host (a write)" : "the host (a read)";
  a.stream = "the host thread";
  mem::check_as(a, p, bytes, write);
}

uint64_t host_sync_count() {
  Device& d = device();
  std::lock_guard<std::mutex> l(d.mu_);
  return d.syncs_;
}

// DIFFTRON_EMU_MUTATION is a comma-separated list of names.
bool mutation(const char* name) {
  static const std::string list = std::getenv("DIFFTRON_EMU_MUTATION") ? std::getenv("DIFFTRON_EMU_MUTATION") : "";
  const size_t n = std::strlen(name);
  for (size_t at = list.find(name); at != std::string::npos; at = list.find(name, at + 1))
    if ((at == 0 || list[at - 1] == ',') && (at + n == list.size() || list[at + n] == ',')) return true;
  return false;
}

}  // namespace emu
