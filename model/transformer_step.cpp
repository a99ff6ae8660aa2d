// Forward and backward, layer by layer, as in DESIGN §2. With tensor
// parallelism the four Megatron communication points are: all-reduce after the
// row-parallel Wo and W2 (forward), all-reduce of the input gradient of the
// column-parallel Wq/Wk/Wv and W1/W3 (backward), the vocab-parallel embedding
// and the vocab-parallel cross-entropy.
#include <cmath>
#include <cstring>

#include "model/transformer.hpp"

namespace dt {

using namespace ops;

void Transformer::row_parallel_residual(Tensor out, Tensor base, Tensor in, Tensor W) {
  // out = base + in·Wᵀ summed over tp; base joins once, on tp rank 0.
  linear_residual_forward(out, par_.place.tp_rank == 0 ? base : Tensor(), in, W);
  tp_sum(out);
}

void Transformer::attention_forward(SlotActs& S, int l) {
  LayerActs& A = S.layers[l - l0_];
  const LayerWeights& W = cw_.layers[l - l0_];
  const int64_t B = B_, T = T_, d = cfg_.head_dim();
  linear_forward(A.q.view({B * T, 2 * Hl_ * d}), A.ln1, W.wq);
  linear_forward(A.k.view({B * T, 2 * KVl_ * d}), A.ln1, W.wk);
  linear_forward(A.v, A.ln1, W.wv);
  rope_forward(A.q, rope_);
  rope_forward(A.k, rope_);
  if (par_.cp > 1) {
    cp_attention_forward(A, l);
  } else if (cfg_.attention == AttentionKind::Diff) {
    const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
    diff_attention_forward(A.att.view({B, T, Hl_, 2 * d}), A.diff, A.q, A.k, A.v.view({B, T, KVl_, 2 * d}), lam,
                           W.subln, float(cfg_.norm_eps));
  } else {
    ops::attention_forward(A.att.view({B, T, 2 * Hl_, d}), A.lse, A.q, A.k, A.v.view({B, T, 2 * KVl_, d}));
  }
}

double Transformer::loss_forward(SlotActs& S, float grad_scale, Tensor loss_sum) {
  rmsnorm_forward(S.lnf, S.rstdf, S.out, cw_.final_norm, float(cfg_.norm_eps));
  linear_forward(S.logits, S.lnf, cw_.lm_head);
  if (par_.place.tp == 1) return cross_entropy(S.logits, S.targets, S.losses, grad_scale, loss_sum);
  // Vocab-parallel: global max, then global Σexp and target logit; logits stay local.
  ce_shard_max(S.logits, S.rowmax);
  par_.tp_comm->all_reduce_max(S.rowmax);
  ce_shard_sumexp_target(S.logits, S.targets, v0_, S.rowmax, S.sumexp, S.target_logit);
  tp_sum(S.sumexp);
  tp_sum(S.target_logit);
  const double total = ce_shard_loss(S.losses, S.targets, S.rowmax, S.sumexp, S.target_logit, loss_sum);
  if (grad_scale != 0.f) ce_shard_grad(S.logits, S.targets, v0_, S.rowmax, S.sumexp, grad_scale);
  return total;
}

double Transformer::forward_stage(int slot, const int32_t* tokens, const int32_t* targets, float grad_scale,
                                  Tensor loss_sum) {
  SlotActs& S = slots_[slot];
  const int64_t N = int64_t(B_) * T_;
  const float eps = float(cfg_.norm_eps);
  if (tokens) copy(S.tokens, cpu_i32(const_cast<int32_t*>(tokens), {N}));
  if (targets) copy(S.targets, cpu_i32(const_cast<int32_t*>(targets), {N}));
  if (has_embed()) {
    DT_CHECK(tokens, "the first stage needs tokens");
    Tensor x0 = input_act(slot);
    embedding_forward_shard(x0, S.tokens, cw_.embed, v0_, cfg_.vocab_size);
    tp_sum(x0);
  }
  for (int l = l0_; l < l1_; ++l) {
    LayerActs& A = S.layers[l - l0_];
    const LayerWeights& W = cw_.layers[l - l0_];
    rmsnorm_forward(A.ln1, A.rstd1, A.x, W.attn_norm, eps);
    attention_forward(S, l);
    row_parallel_residual(A.xm, A.x, A.att, W.wo);
    rmsnorm_forward(A.ln2, A.rstd2, A.xm, W.mlp_norm, eps);
    linear_forward(A.h1, A.ln2, W.w1);
    linear_forward(A.h3, A.ln2, W.w3);
    swiglu_forward(A.act, A.h1, A.h3);
    Tensor next = (l + 1 < l1_) ? S.layers[l + 1 - l0_].x : S.out;
    row_parallel_residual(next, A.xm, A.act, W.w2);
  }
  if (!has_head()) return 0.0;
  DT_CHECK(targets, "the last stage needs targets");
  return loss_forward(S, grad_scale, loss_sum);
}

double Transformer::forward_backward(const int32_t* tokens, const int32_t* targets, float grad_scale) {
  DT_CHECK(has_embed() && has_head(), "forward_backward runs the whole model; use the stage API with pp > 1");
  const double loss = forward_stage(0, tokens, targets, grad_scale);
  if (grad_scale != 0.f) backward_stage(0);
  return loss;
}

void Transformer::attention_backward(SlotActs& S, int l, Tensor d_att) {
  LayerActs& A = S.layers[l - l0_];
  const LayerWeights& W = cw_.layers[l - l0_];
  LayerWeights& G = g_.layers[l - l0_];
  const int64_t B = B_, T = T_, d = cfg_.head_dim(), N = B * T;
  if (par_.cp > 1) {
    cp_attention_backward(A, l, d_att);
  } else if (cfg_.attention == AttentionKind::Diff) {
    const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
    diff_attention_backward(dq_, dk_, dv_.view({B, T, KVl_, 2 * d}), {G.lq1, G.lk1, G.lq2, G.lk2}, G.subln,
                            d_att.view({B, T, Hl_, 2 * d}), A.q, A.k, A.v.view({B, T, KVl_, 2 * d}), lam, W.subln,
                            A.diff, float(cfg_.norm_eps));
  } else {
    ops::attention_backward(dq_, dk_, dv_.view({B, T, 2 * KVl_, d}), d_att.view({B, T, 2 * Hl_, d}), A.q, A.k,
                            A.v.view({B, T, 2 * KVl_, d}), A.att.view({B, T, 2 * Hl_, d}), A.lse);
  }
  rope_backward(dq_, rope_);
  rope_backward(dk_, rope_);
  // dln1 = dq·Wq + dk·Wk + dv·Wv, summed over tp (column-parallel inputs).
  linear_backward(dln_, G.wq, dq_.view({N, 2 * Hl_ * d}), A.ln1, W.wq, false);
  linear_backward(dln_, G.wk, dk_.view({N, 2 * KVl_ * d}), A.ln1, W.wk, true);
  linear_backward(dln_, G.wv, dv_, A.ln1, W.wv, true);
  tp_sum(dln_);
}

void Transformer::recompute_layer(SlotActs& S, int l) {
  if (cfg_.recompute == Recompute::None) return;
  LayerActs& A = S.layers[l - l0_];
  const LayerWeights& W = cw_.layers[l - l0_];
  const float eps = float(cfg_.norm_eps);
  rmsnorm_forward(A.ln1, A.rstd1, A.x, W.attn_norm, eps);
  attention_forward(S, l);
  if (cfg_.recompute != Recompute::Full) return;
  row_parallel_residual(A.xm, A.x, A.att, W.wo);
  rmsnorm_forward(A.ln2, A.rstd2, A.xm, W.mlp_norm, eps);
  linear_forward(A.h1, A.ln2, W.w1);
  linear_forward(A.h3, A.ln2, W.w3);
  swiglu_forward(A.act, A.h1, A.h3);
}

void Transformer::backward_stage(int slot) {
  SlotActs& S = slots_[slot];
  if (has_head()) {
    // S.logits holds grad_scale·dloss/dlogits from the forward.
    linear_backward(dln_, g_.lm_head, S.logits, S.lnf, cw_.lm_head, false);
    tp_sum(dln_);
    fill_zero(dx_);
    rmsnorm_backward(dx_, g_.final_norm, dln_, S.out, cw_.final_norm, S.rstdf);
  } else {
    copy(dx_, dout_);
  }
  for (int l = l1_ - 1; l >= l0_; --l) {
    LayerActs& A = S.layers[l - l0_];
    const LayerWeights& W = cw_.layers[l - l0_];
    LayerWeights& G = g_.layers[l - l0_];
    recompute_layer(S, l);
    // MLP: x_{l+1} = xm + act·W2ᵀ, act = silu(h1)·h3, h1 = ln2·W1ᵀ, h3 = ln2·W3ᵀ
    linear_backward(dact_, G.w2, dx_, A.act, W.w2, false);
    swiglu_backward(dh1_, dh3_, dact_, A.h1, A.h3);
    linear_backward(dln_, G.w1, dh1_, A.ln2, W.w1, false);
    linear_backward(dln_, G.w3, dh3_, A.ln2, W.w3, true);
    tp_sum(dln_);
    rmsnorm_backward(dx_, G.mlp_norm, dln_, A.xm, W.mlp_norm, A.rstd2);
    // Attention: xm = x + att·Woᵀ
    linear_backward(dtmp_, G.wo, dx_, A.att, W.wo, false);
    attention_backward(S, l, dtmp_);
    rmsnorm_backward(dx_, G.attn_norm, dln_, A.x, W.attn_norm, A.rstd1);
    if (grads_ready_) grads_ready_(l);
  }
  if (has_embed()) embedding_backward_shard(g_.embed, S.tokens, dx_, v0_);
  if (grads_ready_) grads_ready_(-1);
}

}  // namespace dt
