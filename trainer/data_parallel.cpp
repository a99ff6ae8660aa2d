#include "trainer/data_parallel.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace dt {

DataParallelGrads::DataParallelGrads(Transformer& model, ProcessGrid* grid, bool zero1, double bucket_mb)
    : model_(model), grid_(grid), zero1_(zero1 && grid && grid->dp_cp().size() > 1),
      arena_(model.param_arena().device()) {
  // ZeRO-1 shards: equal parts of the arena, which the model padded to a multiple of dp × cp.
  const int64_t n = model.flat_grads().numel();
  const int shards = zero1_ ? grid->dp_cp().size() : 1;
  DT_CHECK(n % shards == 0, "parameter arena not padded for ZeRO-1");
  const int64_t len = n / shards;
  s0_ = zero1_ ? len * grid->dp_cp().rank() : 0;
  s1_ = s0_ + len;
  if (zero1_) {
    arena_.begin_measure();
    arena_.alloc_f32({len});
    arena_.commit();
    grad_shard_ = arena_.alloc_f32({len});
  }

  // Buckets from the end of the arena (head, last layer) towards the start
  // (first layer, embedding), cut at layer starts once they reach bucket_mb.
  const int64_t min_floats = std::max<int64_t>(int64_t(bucket_mb * 1e6 / sizeof(float)), 1);
  int64_t end = n;
  for (int l = model.last_layer() - 1; l > model.first_layer(); --l) {
    const int64_t start = model.layer_param_offset(l);
    if (end - start >= min_floats) {
      buckets_.push_back({start, end});
      end = start;
    }
  }
  buckets_.push_back({0, end});
}

GradShard DataParallelGrads::shard() const {
  return {s0_, s1_, zero1_ ? grad_shard_ : model_.flat_grads().slice0(s0_, s1_), zero1_};
}

void DataParallelGrads::overlap_next_backward() {
  if (!replicated()) return;
  overlapping_ = true;
  next_bucket_ = 0;
  model_.set_grads_ready_hook([this](int layer) { on_grads_ready(layer); });
}

// Layer `layer` (−1: the embedding, i.e. everything) has its final gradients.
void DataParallelGrads::on_grads_ready(int layer) {
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

// Sums gradients [begin, end) over dp × cp: in place on every rank, or under
// ZeRO-1 into the shard of whichever rank owns each part of the range.
void DataParallelGrads::launch_bucket(int64_t begin, int64_t end) {
  Communicator& group = grid_->dp_cp();
  Tensor flat = model_.flat_grads();
  if (!zero1_) {
    group.reduce_async(flat.slice0(begin, end), flat.slice0(begin, end), -1);
    return;
  }
  // One reduction per owner of a part of the bucket, all in one group.
  const int64_t len = s1_ - s0_;
  std::vector<Communicator::Reduction> parts;
  for (int r = 0; r < group.size(); ++r) {
    const int64_t lo = std::max(begin, r * len), hi = std::min(end, (r + 1) * len);
    if (lo >= hi) continue;
    const Tensor in = flat.slice0(lo, hi);
    parts.push_back({r == group.rank() ? grad_shard_.slice0(lo - s0_, hi - s0_) : in, in, r});
  }
  group.reduce_async(parts);
}

void DataParallelGrads::finish_reduction() {
  if (overlapping_) {
    on_grads_ready(-1);  // whatever the hook has not started yet (normally nothing)
    grid_->dp_cp().finish_async();
    model_.set_grads_ready_hook({});
    overlapping_ = false;
    return;
  }
  model_.reduce_tp_replicated_grads();
  if (!replicated()) return;
  // Gradients were scaled by 1/(global tokens), so the sum over replicas is the mean gradient.
  if (zero1_) grid_->dp_cp().reduce_scatter_sum(grad_shard_, model_.flat_grads());
  else grid_->dp_cp().all_reduce_sum(model_.flat_grads());
}

void DataParallelGrads::all_gather_params() {
  if (!zero1_) return;
  Tensor params = model_.flat_params();
  grid_->dp_cp().all_gather(params, params.slice0(s0_, s1_));
}

}  // namespace dt
