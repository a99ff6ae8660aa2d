// AdamW over this rank's parameters, optionally ZeRO-1 sharded over data
// parallelism. It works on the model's flat parameter and gradient arenas:
// segments of the flat array carry each parameter's weight-decay flag
// (matrices only) and whether it counts towards the global gradient norm
// (a tp-replicated parameter counts on tp rank 0 only).
//
// Per step: reduce_gradients() (dp all-reduce, or reduce-scatter to this
// rank's shard under ZeRO-1), grad_norm() (global, every rank), then
// step() (AdamW on the shard, then all-gather of the parameters under ZeRO-1).
#pragma once
#include <vector>

#include "comm/process_grid.hpp"
#include "core/arena.hpp"
#include "model/transformer.hpp"

namespace dt {

class AdamWOptimizer {
 public:
  // grid may be null (one process). zero1 shards moments over grid->dp_cp().
  AdamWOptimizer(Transformer& model, const TrainConfig& t, ProcessGrid* grid = nullptr, bool zero1 = false);
  void reduce_gradients();
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

  Transformer& model_;
  TrainConfig t_;
  ProcessGrid* grid_;
  bool zero1_;
  std::vector<Segment> segments_;
  int64_t s0_ = 0, s1_ = 0;
  Arena state_;
  Tensor m_, v_, grad_shard_;
};

}  // namespace dt
