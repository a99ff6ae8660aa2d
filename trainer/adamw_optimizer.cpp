#include "trainer/adamw_optimizer.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/ops.hpp"

namespace dt {

static Tensor sub(Tensor flat, int64_t begin, int64_t end) {
  return Tensor(flat.f32() + begin, DType::F32, {end - begin}, flat.device);
}

AdamWOptimizer::AdamWOptimizer(Transformer& model, const TrainConfig& t, ProcessGrid* grid, bool zero1,
                               double bucket_mb)
    : model_(model), t_(t), grid_(grid), zero1_(zero1 && grid && grid->dp_cp().size() > 1),
      state_(model.param_arena().device()), stats_(model.param_arena().device()) {
  // Segments: each parameter with its flags, and the gaps between them (no decay, zero anyway).
  const float* base = model.flat_params().f32();
  const int64_t n = model.flat_params().numel();
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
  const int shards = zero1_ ? grid->dp_cp().size() : 1;
  DT_CHECK(n % shards == 0, "parameter arena not padded for ZeRO-1");
  const int64_t len = n / shards;
  s0_ = zero1_ ? len * grid->dp_cp().rank() : 0;
  s1_ = s0_ + len;
  state_.begin_measure();
  for (int k = 0; k < (zero1_ ? 3 : 2); ++k) state_.alloc_f32({len});
  state_.commit();
  m_ = state_.alloc_f32({len});
  v_ = state_.alloc_f32({len});
  if (zero1_) grad_shard_ = state_.alloc_f32({len});
  stats_.begin_measure();
  stats_.alloc(DType::F64, {1});
  stats_.alloc_f32({1});
  stats_.commit();
  norm_sq_ = stats_.alloc(DType::F64, {1});
  clip_ = stats_.alloc_f32({1});

  // Buckets from the end of the arena (head, last layer) towards the start
  // (first layer, embedding), cut at layer starts once they reach bucket_mb.
  const int64_t min_floats = int64_t(bucket_mb * 1e6 / sizeof(float));
  int64_t end = n;
  for (int l = model.last_layer() - 1; l > model.first_layer(); --l) {
    const int64_t start = model.layer_param_offset(l);
    if (end - start >= std::max<int64_t>(min_floats, 1)) {
      buckets_.push_back({start, end});
      end = start;
    }
  }
  buckets_.push_back({0, end});
}

void AdamWOptimizer::overlap_next_backward() {
  if (!grid_ || grid_->dp_cp().size() == 1) return;
  overlapping_ = true;
  next_bucket_ = 0;
  model_.set_grads_ready_hook([this](int layer) { on_grads_ready(layer); });
}

// Layer `layer` (−1: the embedding, i.e. everything) has its final gradients.
void AdamWOptimizer::on_grads_ready(int layer) {
  int64_t ready_from = 0;
  if (layer >= 0) {
    model_.reduce_tp_replicated_grads(layer);
    ready_from = model_.layer_param_offset(layer);
  }
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].first >= ready_from) {
    launch_bucket(buckets_[next_bucket_].first, buckets_[next_bucket_].second);
    ++next_bucket_;
  }
}

// Sums gradients [begin, end) over dp×cp: in place on every rank, or under
// ZeRO-1 into the shard of whichever rank owns each part of the range.
void AdamWOptimizer::launch_bucket(int64_t begin, int64_t end) {
  Communicator& group = grid_->dp_cp();
  Tensor flat = model_.flat_grads();
  if (!zero1_) {
    group.reduce_async(sub(flat, begin, end), sub(flat, begin, end), -1);
    return;
  }
  // One reduction per owner of a part of the bucket, all in one group.
  const int64_t len = s1_ - s0_;
  std::vector<Communicator::Reduction> parts;
  for (int r = 0; r < group.size(); ++r) {
    const int64_t lo = std::max(begin, r * len), hi = std::min(end, (r + 1) * len);
    if (lo >= hi) continue;
    const Tensor in = sub(flat, lo, hi);
    parts.push_back({r == group.rank() ? sub(grad_shard_, lo - s0_, hi - s0_) : in, in, r});
  }
  group.reduce_async(parts);
}

Tensor AdamWOptimizer::shard_grads() const { return zero1_ ? grad_shard_ : sub(model_.flat_grads(), s0_, s1_); }

void AdamWOptimizer::reduce_gradients() {
  if (overlapping_) {
    on_grads_ready(-1);  // whatever the hook has not started yet (normally nothing)
    grid_->dp_cp().finish_async();
    model_.set_grads_ready_hook({});
    overlapping_ = false;
    return;
  }
  model_.reduce_tp_replicated_grads();
  if (!grid_ || grid_->dp_cp().size() == 1) return;
  // Gradients were scaled by 1/(global tokens), so the sum over replicas is the mean gradient.
  if (zero1_) grid_->dp_cp().reduce_scatter_sum(grad_shard_, model_.flat_grads());
  else grid_->dp_cp().all_reduce_sum(model_.flat_grads());
}

void AdamWOptimizer::clip_gradients(double max_norm) {
  const Tensor g = shard_grads();
  ops::fill_zero(norm_sq_);
  // Under ZeRO-1 every rank holds a disjoint shard, summed over the world;
  // otherwise one model replica (tp × cp × pp) holds everything, and its cp
  // ranks identical copies, so only cp rank 0 counts.
  if (!grid_ || zero1_ || grid_->coord().cp == 0)
    for (const Segment& s : segments_) {
      const int64_t b = std::max(s.begin, s0_), e = std::min(s.end, s1_);
      if (s.counted && b < e) ops::sum_squares(sub(g, b - s0_, e - s0_), norm_sq_);

    }
  if (grid_) {
    if (zero1_) grid_->dp_cp().all_reduce_sum(norm_sq_);
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
  Tensor params = model_.flat_params();
  const Tensor g = shard_grads();
  for (const Segment& s : segments_) {
    const int64_t b = std::max(s.begin, s0_), e = std::min(s.end, s1_);
    if (b >= e) continue;
    ops::AdamWParams p{float(lr), float(t_.beta1), float(t_.beta2), float(t_.adam_eps),
                       s.decay ? float(t_.weight_decay) : 0.f, step, grad_scale, clip};
    ops::adamw(sub(params, b, e), sub(g, b - s0_, e - s0_), sub(m_, b - s0_, e - s0_), sub(v_, b - s0_, e - s0_), p);
  }
  if (zero1_) grid_->dp_cp().all_gather(params, sub(params, s0_, s1_));
  model_.sync_compute_weights();
}

}  // namespace dt
