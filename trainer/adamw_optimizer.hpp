// AdamW over the part of the model's flat parameter arena this rank updates:
// the whole arena, or under ZeRO-1 the shard DataParallelGrads assigns it
// (trainer/data_parallel.hpp, which also reduces the gradients beforehand and
// all-gathers the updated parameters afterwards). Segments of the flat array
// carry each parameter's weight-decay flag (matrices only) and whether it
// counts towards the global gradient norm (a tp-replicated parameter counts on
// tp rank 0 only).
//
// Per step, after the gradient reduction: clip_gradients() (the global norm
// and the clipping factor, both computed and summed over ranks on the device:
// no host wait), then step() (AdamW on the shard, scaled by that factor). The
// moments m and v cover the shard; checkpoints save them.
#pragma once
#include <vector>

#include "comm/process_grid.hpp"
#include "core/arena.hpp"
#include "model/transformer.hpp"
#include "trainer/data_parallel.hpp"

namespace dt {

class AdamWOptimizer {
 public:
  // grid may be null (one process). shard: what this rank updates, from
  // DataParallelGrads::shard(); by default the whole arena with the model's
  // own gradients (one process, or every replica updating everything).
  AdamWOptimizer(Transformer& model, const TrainConfig& t, ProcessGrid* grid = nullptr, GradShard shard = {});
  // norm_sq() = Σ g² over the model (each replicated parameter counted once,
  // every rank the same value) and clip_factor() = max_norm/‖g‖ when max_norm > 0
  // and ‖g‖ > max_norm, else 1; both stay on the device.
  void clip_gradients(double max_norm);
  Tensor norm_sq() const { return norm_sq_; }      // f64 (1)
  Tensor clip_factor() const { return clip_; }    // f32 (1)
  // The global gradient norm on the host (waits for the device; for tests and tools).
  double grad_norm();
  // One update of the shard's parameters with learning rate lr; gradients are
  // first multiplied by grad_scale and, when given, by clip (clip_factor()).
  // `step` is 1-based. Afterwards the caller shares the update
  // (DataParallelGrads::all_gather_params) and calls model.sync_compute_weights().
  void step(int64_t step, double lr, float grad_scale = 1.f, Tensor clip = {});
  int64_t shard_begin() const { return shard_.begin; }
  int64_t shard_end() const { return shard_.end; }
  Tensor m() const { return m_; }  // moments of the shard [shard_begin, shard_end)
  Tensor v() const { return v_; }

 private:
  struct Segment {
    int64_t begin, end;  // in floats of the flat arena
    bool decay, counted;
  };

  Transformer& model_;
  TrainConfig t_;
  ProcessGrid* grid_;
  GradShard shard_;
  std::vector<Segment> segments_;
  Arena state_;
  Tensor m_, v_;
  Arena stats_;            // norm_sq_ and clip_, on the model's device
  Tensor norm_sq_, clip_;
};

}  // namespace dt
