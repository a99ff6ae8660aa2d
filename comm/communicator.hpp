// One interface for every collective and point-to-point operation difftron
// uses, over a group of ranks. MpiCommunicator runs on host buffers; the NCCL
// implementation for device buffers comes with the CUDA backend.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace dt {

// Ordering. Every operation is ordered after the work already queued on the
// compute stream and before the work queued after it returns: on a GPU by
// events between the compute stream and the communicator's own stream, with
// no host wait; on the CPU it has completed when it returns. The asynchronous
// calls (start_exchange, reduce_async) are ordered after the queued work but
// not before later work until wait_exchange / finish_async.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The group's name in messages (the watchdog's): "tp", "dp", "world", ...
  const char* name() const { return name_; }
  void set_name(const char* n) { name_ = n; }

  // In place; f32 and f64 (and bf16 on NCCL, reduced in fp32).
  virtual void all_reduce_sum(Tensor t) = 0;
  virtual void all_reduce_max(Tensor t) = 0;
  // out (n/size) = this rank's slice of Σ_ranks in (n); n must divide by size.
  virtual void reduce_scatter_sum(Tensor out, Tensor in) = 0;
  // out (n) = concatenation over ranks of in (n/size).
  virtual void all_gather(Tensor out, Tensor in) = 0;
  virtual void broadcast(Tensor t, int root) = 0;
  // out (size·n) on root = concatenation over ranks of in (n), in rank order;
  // out is not written on the other ranks (it may be undefined there).
  virtual void gather(Tensor out, Tensor in, int root) = 0;

  // Point-to-point for the pipeline. A send is started at the next recv() or
  // wait_sends(), together with it (on NCCL, in one group), so stages that
  // send to each other cannot deadlock; t must not change until then.
  virtual void send(Tensor t, int peer, int tag) = 0;
  virtual void recv(Tensor t, int peer, int tag) = 0;
  virtual void wait_sends() = 0;

  // One hop of a ring: every send and receive of the hop started together as
  // one group, so the hop cannot deadlock however large its messages (NCCL
  // buffers only a little of each send until the matching receive runs).
  // Sends and receives to and from the same peer match in order. The received
  // tensors are ready for work queued after wait_exchange(); sent tensors must
  // not change until then. One exchange at a time.
  struct P2P {
    Tensor t;
    int peer;
    bool send;
  };
  virtual void start_exchange(const std::vector<P2P>& ops) = 0;
  virtual void wait_exchange() = 0;

  virtual void barrier() = 0;

  // Asynchronous sums, for overlapping the gradient reduction with the
  // backward: each part sums `in` (f32) over the group into `out` on rank
  // `root`, or on every rank when root is −1 (out may alias in; on non-root
  // ranks out is not written). The parts of one call form one group. It
  // returns at once; the buffers must stay untouched until finish_async(),
  // which makes later work wait for every queued reduction.
  struct Reduction {
    Tensor out, in;
    int root;
  };
  virtual void reduce_async(const std::vector<Reduction>& parts) = 0;
  void reduce_async(Tensor out, Tensor in, int root) { reduce_async(std::vector<Reduction>{{out, in, root}}); }
  virtual void finish_async() = 0;

  // Scalars in double, for host values (on NCCL these wait for the device).
  virtual double all_reduce_sum(double v) = 0;
  virtual double all_reduce_max(double v) = 0;

  // Host bytes (a checkpoint's piece lists, error messages), built on gather
  // and broadcast of i32 host tensors, so on a host (MPI) communicator: world
  // and model_parallel are MPI on GPUs too (ProcessGrid). gather_bytes gives
  // every rank's `mine` on root in rank order (an empty list elsewhere);
  // broadcast_bytes gives root's `text` on every rank.
  std::vector<std::string> gather_bytes(const std::string& mine, int root);
  std::string broadcast_bytes(const std::string& text, int root);

 private:
  const char* name_ = "world";
};

}  // namespace dt
