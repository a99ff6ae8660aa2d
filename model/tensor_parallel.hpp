// Megatron-style tensor-parallel layers (DESIGN §4), named once so that the
// model reads like the single-process model with these layers swapped in.
// With tp = 1 each is the plain layer and communicates nothing.
//
// The four communication points of a tp group:
//   - row-parallel linear (Wo, W2): forward output summed over tp;
//   - column-parallel linear (Wq, Wk, Wv, W1, W3, the LM head): backward input
//     gradient summed over tp, once per shared input (the caller accumulates
//     every column-parallel layer reading that input, then sums);
//   - vocab-parallel embedding: forward rows of other ranks' tokens are zero,
//     so the output is summed; backward each rank scatters into its own rows;
//   - vocab-parallel cross-entropy: global row max, Σexp and target logit are
//     all-reduced; the (N, V) logits are never gathered.
#pragma once
#include "comm/communicator.hpp"
#include "kernels/ops.hpp"

namespace dt {

struct TensorParallel {
  Communicator* comm = nullptr;  // required when size > 1
  int rank = 0, size = 1;
  void sum(Tensor t) const {
    if (size > 1) comm->all_reduce_sum(t);
  }
};

// ---- column-parallel linear: W (out/tp, in) holds this rank's output columns ----
// y (N, out/tp) = x (N, in) · Wᵀ; no communication.
inline void column_parallel_forward(Tensor y, Tensor x, Tensor W) { ops::linear_forward(y, x, W); }
// dx (N, in) = dy · W (+= when accumulate_dx), this rank's part; dW += dyᵀ · x.
inline void column_parallel_backward(Tensor dx, Tensor dW, Tensor dy, Tensor x, Tensor W, bool accumulate_dx) {
  ops::linear_backward(dx, dW, dy, x, W, accumulate_dx);
}
// dx (N, in) summed over tp: after the last column-parallel backward reading x.
inline void column_parallel_input_grad_sum(const TensorParallel& tp, Tensor dx) { tp.sum(dx); }

// ---- row-parallel linear: W (out, in/tp) holds this rank's input rows ----------
// out (N, out) = base + Σ_tp x (N, in/tp) · Wᵀ, the residual add fused into the
// GEMM; base joins once (tp rank 0). out may be base (an in-place residual).
void row_parallel_forward(const TensorParallel& tp, Tensor out, Tensor base, Tensor x, Tensor W);
// dx (N, in/tp) = dy · W (local, no communication: dy is replicated); dW += dyᵀ · x.
inline void row_parallel_backward(Tensor dx, Tensor dW, Tensor dy, Tensor x, Tensor W) {
  ops::linear_backward(dx, dW, dy, x, W, false);
}

// ---- vocab-parallel embedding: E (V/tp, D) holds rows [v0, v0 + V/tp) ----------
// out (N, D) = E[tokens] summed over tp (other ranks' tokens give zero rows here).
void vocab_parallel_embedding_forward(const TensorParallel& tp, Tensor out, Tensor tokens, Tensor E, int64_t v0,
                                      int64_t vocab_total);
// dE (V/tp, D) += the rows of dout (N, D) whose tokens this rank holds.
inline void vocab_parallel_embedding_backward(Tensor dE, Tensor tokens, Tensor dout, int64_t v0) {
  ops::embedding_backward_shard(dE, tokens, dout, v0);
}

// ---- vocab-parallel cross-entropy ---------------------------------------------
// Per-row statistics the tp > 1 form all-reduces, each (N) f32.
struct VocabParallelStats {
  Tensor rowmax, sumexp, target_logit;
};
// logits (N, V/tp) hold vocabulary columns [v0, v0 + V/tp); targets (N) i32
// (−1 ignored); losses (N) per-row loss. With grad_scale ≠ 0 the logits are
// overwritten by grad_scale · dloss/dlogits of this rank's columns. Returns the
// loss sum, or adds it to loss_sum (f64 (1)) as ops::cross_entropy does.
double vocab_parallel_cross_entropy(const TensorParallel& tp, Tensor logits, Tensor targets, int64_t v0,
                                    Tensor losses, const VocabParallelStats& st, float grad_scale,
                                    Tensor loss_sum = {});

}  // namespace dt
