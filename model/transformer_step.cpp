// The training step, layer by layer, as in DESIGN §2: the forward is
// layer_forward (model/layer.hpp), the backward mirrors it here. The tensor-
// parallel layers (column/row-parallel linear, vocab-parallel embedding and
// cross-entropy) come from model/tensor_parallel.hpp.
#include <cmath>
#include <cstring>

#include "model/transformer.hpp"

namespace dt {

using namespace ops;

LayerCtx Transformer::layer_ctx(int l) const {
  LayerCtx c;
  c.cfg = &cfg_, c.g = geom_, c.layer = l, c.B = B_, c.T = T_, c.rope = rope_, c.tp = tp_;
  if (par_.cp > 1) c.ring = &ring_;
  return c;
}

double Transformer::loss_forward(SlotActs& S, float grad_scale, Tensor loss_sum) {
  rmsnorm_forward(S.lnf, S.rstdf, S.out, cw_.final_norm, float(cfg_.norm_eps));
  column_parallel_forward(S.logits, S.lnf, cw_.lm_head);
  return vocab_parallel_cross_entropy(tp_, S.logits, S.targets, v0_, S.losses, {S.rowmax, S.sumexp, S.target_logit},
                                      grad_scale, loss_sum);
}

double Transformer::forward_stage(int slot, const int32_t* tokens, const int32_t* targets, float grad_scale,
                                  Tensor loss_sum) {
  SlotActs& S = slots_[slot];
  const int64_t N = int64_t(B_) * T_;
  if (tokens) copy(S.tokens, cpu_i32(const_cast<int32_t*>(tokens), {N}));
  if (targets) copy(S.targets, cpu_i32(const_cast<int32_t*>(targets), {N}));
  if (has_embed()) {
    DT_CHECK(tokens, "the first stage needs tokens");
    vocab_parallel_embedding_forward(tp_, input_act(slot), S.tokens, cw_.embed, v0_, cfg_.vocab_size);
  }
  for (int l = l0_; l < l1_; ++l) {
    Tensor next = (l + 1 < l1_) ? S.layers[l + 1 - l0_].x : S.out;
    layer_forward(layer_ctx(l), cw_.layers[l - l0_], S.layers[l - l0_], next);
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
  const AttnGeometry& g = geom_;
  const int64_t B = B_, T = T_, N = B * T;
  if (par_.cp > 1) {
    cp_attention_backward(A, l, d_att);
  } else if (cfg_.attention == AttentionKind::Diff) {
    const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
    diff_attention_backward(dq_, dk_, dv_.view({B, T, g.kv, g.dv}), {G.lq1, G.lk1, G.lq2, G.lk2}, G.subln,
                            d_att.view({B, T, g.heads, g.dv}), A.q, A.k, A.v.view({B, T, g.kv, g.dv}), lam, W.subln,
                            A.diff, float(cfg_.norm_eps));
  } else if (cfg_.attention == AttentionKind::DiffV2) {
    diff_v2_combine_backward(d_o_, dlam_, d_att, A.o, A.lam);
    ops::attention_backward(dq_, dk_, dv_.view({B, T, g.kv, g.dv}), d_o_, A.q, A.k, A.v.view({B, T, g.kv, g.dv}),
                            A.o, A.lse);
  } else {
    ops::attention_backward(dq_, dk_, dv_.view({B, T, g.kv, g.dv}), d_att.view({B, T, g.heads, g.dv}), A.q, A.k,
                            A.v.view({B, T, g.kv, g.dv}), A.att.view({B, T, g.heads, g.dv}), A.lse);
  }
  rope_backward(dq_, rope_);
  rope_backward(dk_, rope_);
  // dln1 = dq·Wq + dk·Wk + dv·Wv, summed over tp (column-parallel inputs).
  column_parallel_backward(dln_, G.wq, dq_.view({N, g.q_cols()}), A.ln1, W.wq, false);
  column_parallel_backward(dln_, G.wk, dk_.view({N, g.k_cols()}), A.ln1, W.wk, true);
  column_parallel_backward(dln_, G.wv, dv_, A.ln1, W.wv, true);
  if (cfg_.attention == AttentionKind::DiffV2) column_parallel_backward(dln_, G.wlam, dlam_, A.ln1, W.wlam, true);
  column_parallel_input_grad_sum(tp_, dln_);
}

void Transformer::recompute_layer(SlotActs& S, int l) {
  if (cfg_.recompute == Recompute::None) return;
  const LayerCtx c = layer_ctx(l);
  attention_sublayer_forward(c, cw_.layers[l - l0_], S.layers[l - l0_]);
  if (cfg_.recompute == Recompute::Full) mlp_sublayer_forward(c, cw_.layers[l - l0_], S.layers[l - l0_]);
}

void Transformer::backward_stage(int slot) {
  SlotActs& S = slots_[slot];
  if (has_head()) {
    // S.logits holds grad_scale·dloss/dlogits from the forward.
    column_parallel_backward(dln_, g_.lm_head, S.logits, S.lnf, cw_.lm_head, false);
    column_parallel_input_grad_sum(tp_, dln_);
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
    row_parallel_backward(dact_, G.w2, dx_, A.act, W.w2);
    swiglu_backward(dh1_, dh3_, dact_, A.h1, A.h3);
    column_parallel_backward(dln_, G.w1, dh1_, A.ln2, W.w1, false);
    column_parallel_backward(dln_, G.w3, dh3_, A.ln2, W.w3, true);
    column_parallel_input_grad_sum(tp_, dln_);
    rmsnorm_backward(dx_, G.mlp_norm, dln_, A.xm, W.mlp_norm, A.rstd2);
    // Attention: xm = x + att·Woᵀ
    row_parallel_backward(dtmp_, G.wo, dx_, A.att, W.wo);
    attention_backward(S, l, dtmp_);
    rmsnorm_backward(dx_, G.attn_norm, dln_, A.x, W.attn_norm, A.rstd1);
    if (grads_ready_) grads_ready_(l);
  }
  if (has_embed()) vocab_parallel_embedding_backward(g_.embed, S.tokens, dx_, v0_);
  if (grads_ready_) grads_ready_(-1);
}

}  // namespace dt
