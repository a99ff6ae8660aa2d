// TEMPORARY stand-in for the emulator's device thread, linked only into the
// emulated NCCL's test program (tests/mpi/emulated_nccl_semantics.cpp), never
// into difftron_emu_lib. The real emu::enqueue / access / op_fault (streams,
// events, the race detector) replace it; delete this file then.
//
// What it provides, no more: streams as FIFO queues of ops; one device thread
// that polls the head op of every stream in turn (an op returning kBlocked
// stays at the head, so other streams proceed) and backs off (yield, then
// sleeps up to 1 ms) when no op finished in a round; cudaStreamCreate(WithFlags),
// cudaStreamSynchronize, cudaStreamDestroy, cudaDeviceSynchronize; cudaMalloc,
// cudaFree and a cudaMemcpy that first waits for the device; emu::access
// checks its range against the allocations; emu::op_fault prints at once and
// sets a sticky error that every later call returns.
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "emulated_runtime.hpp"

struct CUstream_st {
  struct Op {
    std::string name;
    std::function<emu::Progress()> run;
  };
  std::deque<Op> queue;  // the device thread pops the front, the host pushes the back
};

namespace {

// Never destroyed: the detached device thread may still wait on it at exit.
struct Device {
  std::mutex mu;
  std::condition_variable changed;  // an op finished, or one was queued
  std::vector<CUstream_st*> streams;
  CUstream_st legacy_stream;
  std::map<const unsigned char*, size_t> allocations;
  cudaError_t sticky = cudaSuccess;
  std::string sticky_message;
};
Device& dev = *new Device;
std::mutex& mu = dev.mu;
std::condition_variable& changed = dev.changed;
std::vector<CUstream_st*>& streams = dev.streams;
CUstream_st& legacy_stream = dev.legacy_stream;
std::map<const unsigned char*, size_t>& allocations = dev.allocations;
cudaError_t& sticky = dev.sticky;
std::string& sticky_message = dev.sticky_message;
thread_local const char* running = "";

CUstream_st* resolve(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread ? &legacy_stream : s;
}

void device_loop() {
  for (int idle_rounds = 0;;) {
    std::vector<std::pair<CUstream_st*, CUstream_st::Op*>> heads;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto collect = [&] {
        heads.clear();
        if (!legacy_stream.queue.empty()) heads.push_back({&legacy_stream, &legacy_stream.queue.front()});
        for (CUstream_st* s : streams)
          if (!s->queue.empty()) heads.push_back({s, &s->queue.front()});
        return !heads.empty();
      };
      changed.wait(lock, collect);
    }
    bool finished = false;
    for (auto& [stream, op] : heads) {
      running = op->name.c_str();
      const emu::Progress r = op->run();
      running = "";
      if (r == emu::Progress::kDone) {
        std::lock_guard<std::mutex> lock(mu);
        stream->queue.pop_front();  // references to other elements stay valid
        finished = true;
        changed.notify_all();
      }
    }
    idle_rounds = finished ? 0 : idle_rounds + 1;
    if (idle_rounds > 0 && idle_rounds <= 64) sched_yield();
    else if (idle_rounds > 64)
      std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 20 << std::min(idle_rounds - 64, 6))));
  }
}

void start_device() {
  static std::once_flag once;
  std::call_once(once, [] { std::thread(device_loop).detach(); });
}

void wait_empty(CUstream_st* s) {
  std::unique_lock<std::mutex> lock(mu);
  changed.wait(lock, [&] {
    if (s) return s->queue.empty();
    bool empty = legacy_stream.queue.empty();
    for (CUstream_st* t : streams) empty = empty && t->queue.empty();
    return empty;
  });
}

}  // namespace

namespace emu {

void enqueue(cudaStream_t s, std::string name, std::function<Progress()> run) {
  start_device();
  std::lock_guard<std::mutex> lock(mu);
  resolve(s)->queue.push_back({std::move(name), std::move(run)});
  changed.notify_all();
}

bool in_device_allocation(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  std::lock_guard<std::mutex> lock(mu);
  auto it = allocations.upper_bound(c);
  if (it == allocations.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

void access(const void* p, size_t bytes, bool write) {
  if (!in_device_allocation(p, bytes))
    op_fault(std::string(running) + ": " + (write ? "writes " : "reads ") + std::to_string(bytes) +
             " bytes outside every device allocation");
}

void op_fault(const std::string& message) {
  std::fprintf(stderr, "emulated CUDA fault in %s: %s\n", running, message.c_str());
  std::fflush(stderr);
  std::lock_guard<std::mutex> lock(mu);
  if (sticky == cudaSuccess) sticky = cudaErrorLaunchFailure, sticky_message = message;
}

const char* running_op_name() { return running; }

}  // namespace emu

extern "C" {

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  std::lock_guard<std::mutex> lock(mu);
  streams.push_back(new CUstream_st);
  *s = streams.back();
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  wait_empty(resolve(s));
  std::lock_guard<std::mutex> lock(mu);
  return sticky;
}

cudaError_t cudaDeviceSynchronize() {
  wait_empty(nullptr);
  std::lock_guard<std::mutex> lock(mu);
  return sticky;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  wait_empty(s);
  std::lock_guard<std::mutex> lock(mu);
  streams.erase(std::find(streams.begin(), streams.end(), s));
  delete s;
  return sticky;
}

cudaError_t cudaMalloc(void** p, size_t n) {
  void* m = nullptr;
  if (posix_memalign(&m, 256, std::max<size_t>(n, 1)) != 0) return cudaErrorMemoryAllocation;
  std::memset(m, 0xFF, n);
  std::lock_guard<std::mutex> lock(mu);
  allocations[static_cast<unsigned char*>(m)] = n;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  wait_empty(nullptr);
  std::lock_guard<std::mutex> lock(mu);
  if (!allocations.erase(static_cast<unsigned char*>(p))) return cudaErrorInvalidValue;
  std::free(p);
  return sticky;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  wait_empty(nullptr);
  std::memmove(dst, src, n);
  std::lock_guard<std::mutex> lock(mu);
  return sticky;
}

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(mu);
  return sticky;
}

const char* cudaGetErrorString(cudaError_t e) {
  thread_local std::string s;
  std::lock_guard<std::mutex> lock(mu);
  s = e == cudaSuccess ? "no error" : "emulated CUDA error " + std::to_string(int(e)) + ": " + sticky_message;
  return s.c_str();
}

}  // extern "C"
