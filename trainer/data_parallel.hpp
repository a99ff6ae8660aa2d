// Data parallelism over the dp × cp replicas (DESIGN §4): one step's gradient
// reduction, bucketed and overlapped with the backward, and under ZeRO-1 the
// reduction of each part of the flat gradient arena to the rank that owns it
// (a reduce-scatter) and the all-gather of the updated parameters.
//
// The Trainer drives one step as:
//   overlap_next_backward()   before the step's last backward: the model's
//                             grads-ready hook now reports each finished layer,
//   model.backward_stage()    the hook sums the layer's tp-replicated gradients
//                             (λ, g_sub) over tp and starts every bucket the
//                             backward has passed, asynchronously,
//   finish_reduction()        starts what is left and waits,
//   AdamWOptimizer            clips and updates shard() (this rank's part),
//   all_gather_params()       ZeRO-1: every rank's updated part to every rank.
//
// Buckets: the flat gradient arena cut at layer boundaries into pieces of at
// least parallel.grad_bucket_mb, from its end (head, last layer: the first
// gradients the backward finishes) towards the embedding.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "comm/process_grid.hpp"
#include "core/arena.hpp"
#include "model/transformer.hpp"

namespace dt {

// The part of the flat parameter arena this rank updates, and its gradients
// once reduced over dp × cp: floats [begin, end) of model.flat_params();
// grads is (end − begin) f32 on the model's device.
struct GradShard {
  int64_t begin = 0, end = 0;
  Tensor grads;
  bool disjoint = false;  // ZeRO-1: the dp × cp ranks hold disjoint shards (each gradient counted once over them)
};

class DataParallelGrads {
 public:
  // grid may be null (one process: the reduction is only the tp sum, a no-op
  // at tp 1). zero1 shards the update over grid->dp_cp() when it has > 1 rank.
  explicit DataParallelGrads(Transformer& model, ProcessGrid* grid = nullptr, bool zero1 = false,
                             double bucket_mb = 25);
  void overlap_next_backward();
  // After every micro-batch's backward: the gradients of shard() are the sums
  // over tp (replicated parameters) and over dp × cp.
  void finish_reduction();
  // ZeRO-1: after the update of shard(), every rank's updated parameters to
  // every rank (a no-op without ZeRO-1). Then model.sync_compute_weights().
  void all_gather_params();

  GradShard shard() const;
  bool zero1() const { return zero1_; }
  // The buckets, as [begin, end) ranges of the flat arena in launch order (last layers first).
  const std::vector<std::pair<int64_t, int64_t>>& buckets() const { return buckets_; }

 private:
  void on_grads_ready(int layer);
  void launch_bucket(int64_t begin, int64_t end);
  bool replicated() const { return grid_ && grid_->dp_cp().size() > 1; }

  Transformer& model_;
  ProcessGrid* grid_;
  bool zero1_;
  int64_t s0_ = 0, s1_ = 0;
  Arena arena_;       // grad_shard_ under ZeRO-1, on the model's device
  Tensor grad_shard_;  // (s1_ − s0_) f32: this rank's reduced part
  std::vector<std::pair<int64_t, int64_t>> buckets_;
  size_t next_bucket_ = 0;
  bool overlapping_ = false;
};

}  // namespace dt
