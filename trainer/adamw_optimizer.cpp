#include "trainer/adamw_optimizer.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/ops.hpp"

namespace dt {

AdamWOptimizer::AdamWOptimizer(Transformer& model, const TrainConfig& t, ProcessGrid* grid, GradShard shard)
    : model_(model), t_(t), grid_(grid), shard_(shard), state_(model.param_arena().device()),
      stats_(model.param_arena().device()) {
  const int64_t n = model.flat_params().numel();
  if (!shard_.grads.defined()) shard_ = {0, n, model.flat_grads(), false};
  DT_CHECK(0 <= shard_.begin && shard_.begin < shard_.end && shard_.end <= n &&
               shard_.grads.numel() == shard_.end - shard_.begin,
           "optimizer shard [", shard_.begin, ", ", shard_.end, ") with ", shard_.grads.numel(),
           " gradients does not fit the parameter arena of ", n, " floats");
  // Segments: each parameter with its flags, and the gaps between them (no decay, zero anyway).
  const float* base = model.flat_params().f32();
  const bool tp_rank0 = !grid || grid->coord().tp == 0;
  int64_t pos = 0;
  for (size_t i = 0; i < model.params().size(); ++i) {
    const int64_t b = model.params()[i].f32() - base, e = b + model.params()[i].numel();
    if (b > pos) segments_.push_back({pos, b, false, false});
    const ParamSpec& p = model.registry()[i];
    segments_.push_back({b, e, p.decay, p.split != TpSplit::Replicated || tp_rank0});
    pos = e;
  }
  if (pos < n) segments_.push_back({pos, n, false, false});
  const int64_t len = shard_.end - shard_.begin;
  state_.begin_measure();
  for (int k = 0; k < 2; ++k) state_.alloc_f32({len});
  state_.commit();
  m_ = state_.alloc_f32({len});
  v_ = state_.alloc_f32({len});
  stats_.begin_measure();
  stats_.alloc(DType::F64, {1});
  stats_.alloc_f32({1});
  stats_.commit();
  norm_sq_ = stats_.alloc(DType::F64, {1});
  clip_ = stats_.alloc_f32({1});
}

void AdamWOptimizer::clip_gradients(double max_norm) {
  const int64_t s0 = shard_.begin, s1 = shard_.end;
  ops::fill_zero(norm_sq_);
  // Under ZeRO-1 every rank holds a disjoint shard, summed over the world;
  // otherwise one model replica (tp × cp × pp) holds everything, and its cp
  // ranks identical copies, so only cp rank 0 counts.
  if (!grid_ || shard_.disjoint || grid_->coord().cp == 0)
    for (const Segment& s : segments_) {
      const int64_t b = std::max(s.begin, s0), e = std::min(s.end, s1);
      if (s.counted && b < e) ops::sum_squares(shard_.grads.slice0(b - s0, e - s0), norm_sq_);
    }
  if (grid_) {
    if (shard_.disjoint) grid_->dp_cp().all_reduce_sum(norm_sq_);
    else if (grid_->shape().cp > 1) grid_->cp().all_reduce_sum(norm_sq_);
    grid_->tp().all_reduce_sum(norm_sq_);
    grid_->pp().all_reduce_sum(norm_sq_);
  }
  ops::clip_factor(clip_, norm_sq_, max_norm);
}

double AdamWOptimizer::grad_norm() {
  clip_gradients(0.0);
  double sq = 0;
  device_copy(&sq, Device::cpu(), norm_sq_.ptr, norm_sq_.device, sizeof sq);
  return std::sqrt(sq);
}

void AdamWOptimizer::step(int64_t step, double lr, float grad_scale, Tensor clip) {
  const int64_t s0 = shard_.begin, s1 = shard_.end;
  Tensor params = model_.flat_params();
  for (const Segment& s : segments_) {
    const int64_t b = std::max(s.begin, s0), e = std::min(s.end, s1);
    if (b >= e) continue;
    ops::AdamWParams p{float(lr), float(t_.beta1), float(t_.beta2), float(t_.adam_eps),
                       s.decay ? float(t_.weight_decay) : 0.f, step, grad_scale, clip};
    ops::adamw(params.slice0(b, e), shard_.grads.slice0(b - s0, e - s0), m_.slice0(b - s0, e - s0),
               v_.slice0(b - s0, e - s0), p);
  }
}

}  // namespace dt
