// The emulated device's streams, events and worker thread (device.cpp), as
// the CUDA runtime entry points of runtime.cpp use them.
//
// Ordering is modelled with vector clocks, one entry per agent (the host
// thread, each stream). An op queued on a stream carries the clock of what
// must precede it: earlier ops of its stream, everything the host did before
// queueing it, the events its stream waits on (cudaStreamWaitEvent), and the
// legacy default stream's implicit barrier with blocking streams (not with
// cudaStreamNonBlocking ones). The worker runs an op only when all of that has
// completed, and the race detector (memory.hpp) uses the same clocks to decide
// whether two accesses were ordered. The host's clock joins a stream's or an
// event's only when it synchronises with it.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "emulated_runtime.hpp"
#include "memory.hpp"

namespace emu {

struct Event {
  bool recorded = false;
  int agent = 0;
  uint32_t clock = 0;
  VectorClock vc{};
  // When the worker reached the record (shared with a queued record, which may
  // outlive a cudaEventDestroy as on a GPU).
  std::shared_ptr<double> time_ms = std::make_shared<double>(0.0);
};

// A queued op as the caller sees it right after queueing.
struct Queued {
  int agent;
  uint32_t clock;
  VectorClock vc;
};

Queued enqueue_op(cudaStream_t s, std::string name, std::function<Progress()> run);

cudaStream_t create_stream(bool non_blocking);
// Streams are released once their queued work has run.
cudaError_t destroy_stream(cudaStream_t s);
bool valid_stream(cudaStream_t s);

void record_event(Event* e, cudaStream_t s);
void stream_wait_event(cudaStream_t s, const Event* e);
bool event_done(const Event* e);

// Host synchronisation (each counts in host_sync_count): returns the sticky
// error if an op failed.
cudaError_t synchronize_stream(cudaStream_t s);
cudaError_t synchronize_event(const Event* e);
cudaError_t synchronize_device();
// Blocks the host until the given queued op has run (a blocking copy).
cudaError_t wait_for(const Queued& q);

// The sticky error (cudaSuccess when none): set by a failed op or a race, and
// returned by every later runtime call.
cudaError_t sticky_error();
const std::string& sticky_message();

}  // namespace emu
