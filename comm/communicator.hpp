// One interface for every collective and point-to-point operation difftron
// uses, over a group of ranks. MpiCommunicator runs on host buffers; the NCCL
// implementation for device buffers comes with the CUDA backend.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.hpp"

namespace dt {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place over f32 tensors.
  virtual void all_reduce_sum(Tensor t) = 0;
  virtual void all_reduce_max(Tensor t) = 0;
  // out (n/size) = this rank's slice of Σ_ranks in (n); n must divide by size.
  virtual void reduce_scatter_sum(Tensor out, Tensor in) = 0;
  // out (n) = concatenation over ranks of in (n/size).
  virtual void all_gather(Tensor out, Tensor in) = 0;
  virtual void broadcast(Tensor t, int root) = 0;
  // Point-to-point. send() may return before the peer receives; wait_sends()
  // completes every outstanding send (call before reusing a sent buffer).
  virtual void send(Tensor t, int peer, int tag) = 0;
  virtual void recv(Tensor t, int peer, int tag) = 0;
  virtual void wait_sends() = 0;
  virtual void barrier() = 0;

  // Asynchronous sums, for overlapping the gradient reduction with the
  // backward: reduce_async sums `in` (f32) over the group into `out` on rank
  // `root`, or on every rank when root is −1 (out may alias in; on non-root
  // ranks out is not written). It returns at once; the buffers must stay
  // untouched until finish_async(), which completes every queued reduction.
  // On a GPU the reduction starts after the kernels already queued on the
  // compute stream and finish_async() makes later kernels wait for it.
  virtual void reduce_async(Tensor out, Tensor in, int root) = 0;
  virtual void finish_async() = 0;

  // Scalars in double, for losses and norms.
  virtual double all_reduce_sum(double v) = 0;
  virtual double all_reduce_max(double v) = 0;
};

}  // namespace dt
