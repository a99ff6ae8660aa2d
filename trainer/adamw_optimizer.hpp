// AdamW over this rank's parameters, optionally ZeRO-1 sharded over data
// parallelism. It works on the model's flat parameter and gradient arenas:
// segments of the flat array carry each parameter's weight-decay flag
// (matrices only) and whether it counts towards the global gradient norm
// (a tp-replicated parameter counts on tp rank 0 only).
//
// Per step: reduce_gradients() (tp sum of the replicated λ/g_sub gradients,
// dp all-reduce, or reduction to each rank's shard under ZeRO-1), grad_norm()
// (global, every rank), then step() (AdamW on the shard, then all-gather of
// the parameters under ZeRO-1).
//
// Overlap: overlap_next_backward() before the step's last backward makes the
// model report each finished layer; the flat gradient arena is cut at layer
// boundaries into buckets of about parallel.grad_bucket_mb, and each bucket's
// reduction starts (asynchronously) as soon as the backward has passed it,
// while the earlier layers are still being differentiated. reduce_gradients()
// then starts what is left and waits.
#pragma once
#include <utility>
#include <vector>

#include "comm/process_grid.hpp"
#include "core/arena.hpp"
#include "model/transformer.hpp"

namespace dt {

class AdamWOptimizer {
 public:
  // grid may be null (one process). zero1 shards moments over grid->dp_cp().
  AdamWOptimizer(Transformer& model, const TrainConfig& t, ProcessGrid* grid = nullptr, bool zero1 = false,
                 double bucket_mb = 25);
  void overlap_next_backward();
  void reduce_gradients();
  // The buckets, as [begin, end) ranges of the flat arena in launch order (last layers first).
  const std::vector<std::pair<int64_t, int64_t>>& buckets() const { return buckets_; }
  double grad_norm();
  // One update with learning rate lr; gradients are first multiplied by
  // grad_scale (the clipping factor). `step` is 1-based.
  void step(int64_t step, double lr, float grad_scale);
  int64_t shard_begin() const { return s0_; }
  int64_t shard_end() const { return s1_; }
  Tensor m() const { return m_; }  // moments of the shard [shard_begin, shard_end)
  Tensor v() const { return v_; }

 private:
  struct Segment {
    int64_t begin, end;  // in floats of the flat arena
    bool decay, counted;
  };
  Tensor shard_grads() const;
  void on_grads_ready(int layer);
  void launch_bucket(int64_t begin, int64_t end);

  Transformer& model_;
  TrainConfig t_;
  ProcessGrid* grid_;
  bool zero1_;
  std::vector<Segment> segments_;
  int64_t s0_ = 0, s1_ = 0;
  Arena state_;
  Tensor m_, v_, grad_shard_;
  std::vector<std::pair<int64_t, int64_t>> buckets_;
  size_t next_bucket_ = 0;
  bool overlapping_ = false;
};

}  // namespace dt
