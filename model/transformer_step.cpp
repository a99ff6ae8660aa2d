// Forward and backward of the whole model, layer by layer, as in DESIGN §2.
#include <cstring>

#include "model/transformer.hpp"

namespace dt {

using namespace ops;

void Transformer::attention_forward(int l) {
  LayerActs& A = acts_[l];
  const LayerWeights& W = w_.layers[l];
  const int64_t B = B_, T = T_, H = cfg_.n_heads, KV = cfg_.n_kv_heads, d = cfg_.head_dim();
  linear_forward(A.q.view({B * T, 2 * H * d}), A.ln1, W.wq);
  linear_forward(A.k.view({B * T, 2 * KV * d}), A.ln1, W.wk);
  linear_forward(A.v, A.ln1, W.wv);
  rope_forward(A.q, rope_);
  rope_forward(A.k, rope_);
  if (cfg_.attention == AttentionKind::Diff) {
    const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
    diff_attention_forward(A.att.view({B, T, H, 2 * d}), A.diff, A.q, A.k, A.v.view({B, T, KV, 2 * d}), lam,
                           W.subln, float(cfg_.norm_eps));
  } else {
    ops::attention_forward(A.att.view({B, T, 2 * H, d}), A.lse, A.q, A.k, A.v.view({B, T, 2 * KV, d}));
  }
}

double Transformer::forward_backward(const int32_t* tokens, const int32_t* targets, float grad_scale) {
  const int64_t N = int64_t(B_) * T_;
  std::memcpy(tokens_.i32(), tokens, N * sizeof(int32_t));
  std::memcpy(targets_.i32(), targets, N * sizeof(int32_t));
  const float eps = float(cfg_.norm_eps);
  embedding_forward(acts_.empty() ? x_final_ : acts_[0].x, tokens_, w_.embed);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    LayerActs& A = acts_[l];
    const LayerWeights& W = w_.layers[l];
    rmsnorm_forward(A.ln1, A.rstd1, A.x, W.attn_norm, eps);
    attention_forward(l);
    // xm = x + att·Woᵀ
    std::memcpy(A.xm.f32(), A.x.f32(), A.x.bytes());
    matmul(A.xm, A.att, false, W.wo, true, 1.f, 1.f);
    rmsnorm_forward(A.ln2, A.rstd2, A.xm, W.mlp_norm, eps);
    linear_forward(A.h1, A.ln2, W.w1);
    linear_forward(A.h3, A.ln2, W.w3);
    swiglu_forward(A.act, A.h1, A.h3);
    Tensor next = (l + 1 < cfg_.n_layers) ? acts_[l + 1].x : x_final_;
    std::memcpy(next.f32(), A.xm.f32(), A.xm.bytes());
    matmul(next, A.act, false, W.w2, true, 1.f, 1.f);
  }
  rmsnorm_forward(lnf_, rstdf_, x_final_, w_.final_norm, eps);
  linear_forward(logits_, lnf_, w_.lm_head);
  const double loss_sum = cross_entropy(logits_, targets_, losses_, grad_scale);
  if (grad_scale != 0.f) backward(tokens_.i32());
  return loss_sum;
}

void Transformer::attention_backward(int l, Tensor d_att) {
  LayerActs& A = acts_[l];
  const LayerWeights& W = w_.layers[l];
  LayerWeights& G = g_.layers[l];
  const int64_t B = B_, T = T_, H = cfg_.n_heads, KV = cfg_.n_kv_heads, d = cfg_.head_dim();
  if (cfg_.attention == AttentionKind::Diff) {
    const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
    diff_attention_backward(dq_, dk_, dv_.view({B, T, KV, 2 * d}), {G.lq1, G.lk1, G.lq2, G.lk2}, G.subln,
                            d_att.view({B, T, H, 2 * d}), A.q, A.k, A.v.view({B, T, KV, 2 * d}), lam, W.subln,
                            A.diff, float(cfg_.norm_eps));
  } else {
    ops::attention_backward(dq_, dk_, dv_.view({B, T, 2 * KV, d}), d_att.view({B, T, 2 * H, d}), A.q, A.k,
                            A.v.view({B, T, 2 * KV, d}), A.att.view({B, T, 2 * H, d}), A.lse);
  }
  rope_backward(dq_, rope_);
  rope_backward(dk_, rope_);
  // dln1 = dq·Wq + dk·Wk + dv·Wv; weight gradients from ln1.
  const int64_t N = B * T;
  linear_backward(dln_, G.wq, dq_.view({N, 2 * H * d}), A.ln1, W.wq, false);
  linear_backward(dln_, G.wk, dk_.view({N, 2 * KV * d}), A.ln1, W.wk, true);
  linear_backward(dln_, G.wv, dv_, A.ln1, W.wv, true);
}

void Transformer::backward(const int32_t* tokens) {
  (void)tokens;
  // logits_ now holds grad_scale·dloss/dlogits.
  linear_backward(dln_, g_.lm_head, logits_, lnf_, w_.lm_head, false);
  std::memset(dx_.f32(), 0, dx_.bytes());
  rmsnorm_backward(dx_, g_.final_norm, dln_, x_final_, w_.final_norm, rstdf_);
  for (int l = cfg_.n_layers - 1; l >= 0; --l) {
    LayerActs& A = acts_[l];
    const LayerWeights& W = w_.layers[l];
    LayerWeights& G = g_.layers[l];
    // MLP: x_{l+1} = xm + act·W2ᵀ, act = silu(h1)·h3, h1 = ln2·W1ᵀ, h3 = ln2·W3ᵀ
    linear_backward(dact_, G.w2, dx_, A.act, W.w2, false);
    swiglu_backward(dh1_, dh3_, dact_, A.h1, A.h3);
    linear_backward(dln_, G.w1, dh1_, A.ln2, W.w1, false);
    linear_backward(dln_, G.w3, dh3_, A.ln2, W.w3, true);
    rmsnorm_backward(dx_, G.mlp_norm, dln_, A.xm, W.mlp_norm, A.rstd2);
    // Attention: xm = x + att·Woᵀ
    linear_backward(dtmp_, G.wo, dx_, A.att, W.wo, false);
    attention_backward(l, dtmp_);
    rmsnorm_backward(dx_, G.attn_norm, dln_, A.x, W.attn_norm, A.rstd1);
  }
  embedding_backward(g_.embed, tokens_, dx_);
}

}  // namespace dt
