// AdamW over this rank's parameters, optionally ZeRO-1 sharded over data
// parallelism. It works on the model's flat parameter and gradient arenas:
// segments of the flat array carry each parameter's weight-decay flag
// (matrices only) and whether it counts towards the global gradient norm
// (a tp-replicated parameter counts on tp rank 0 only).
//
// Per step: reduce_gradients() (tp sum of the replicated λ/g_sub gradients,
// dp all-reduce, or reduction to each rank's shard under ZeRO-1),
// clip_gradients() (the global norm and the clipping factor, both computed and
// summed over ranks on the device: no host wait), then step() (AdamW on the
// shard, scaled by that factor, then all-gather of the parameters under ZeRO-1).
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
  // norm_sq() = Σ g² over the model (each replicated parameter counted once,
  // every rank the same value) and clip_factor() = max_norm/‖g‖ when max_norm > 0
  // and ‖g‖ > max_norm, else 1; both stay on the device.
  void clip_gradients(double max_norm);
  Tensor norm_sq() const { return norm_sq_; }      // f64 (1)
  Tensor clip_factor() const { return clip_; }    // f32 (1)
  // The global gradient norm on the host (waits for the device; for tests and tools).
  double grad_norm();
  // One update with learning rate lr; gradients are first multiplied by
  // grad_scale and, when given, by clip (clip_factor()). `step` is 1-based.
  void step(int64_t step, double lr, float grad_scale = 1.f, Tensor clip = {});
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
  Arena stats_;            // norm_sq_ and clip_, on the model's device
  Tensor norm_sq_, clip_;
  std::vector<std::pair<int64_t, int64_t>> buckets_;
  size_t next_bucket_ = 0;
  bool overlapping_ = false;
};

}  // namespace dt
