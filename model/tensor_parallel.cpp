#include "model/tensor_parallel.hpp"

namespace dt {

using namespace ops;

void row_parallel_forward(const TensorParallel& tp, Tensor out, Tensor base, Tensor x, Tensor W) {
  linear_residual_forward(out, tp.rank == 0 ? base : Tensor(), x, W);
  tp.sum(out);
}

void vocab_parallel_embedding_forward(const TensorParallel& tp, Tensor out, Tensor tokens, Tensor E, int64_t v0,
                                      int64_t vocab_total) {
  embedding_forward_shard(out, tokens, E, v0, vocab_total);
  tp.sum(out);
}

double vocab_parallel_cross_entropy(const TensorParallel& tp, Tensor logits, Tensor targets, int64_t v0,
                                    Tensor losses, const VocabParallelStats& st, float grad_scale, Tensor loss_sum) {
  if (tp.size == 1) return cross_entropy(logits, targets, losses, grad_scale, loss_sum);
  // The global max first (it keeps exp() in range), then Σexp and the target
  // logit, which only the rank holding the target's column contributes.
  vocab_shard_row_max(logits, st.rowmax);
  tp.comm->all_reduce_max(st.rowmax);
  vocab_shard_sumexp_target(logits, targets, v0, st.rowmax, st.sumexp, st.target_logit);
  tp.sum(st.sumexp);
  tp.sum(st.target_logit);
  const double total = vocab_shard_loss(losses, targets, st.rowmax, st.sumexp, st.target_logit, loss_sum);
  if (grad_scale != 0.f) vocab_shard_grad(logits, targets, v0, st.rowmax, st.sumexp, grad_scale);
  return total;
}

}  // namespace dt
