#include "eval/generate/kv_cache.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "model/memory_estimate.hpp"

namespace dt {

using namespace ops;

KvCacheDecoder::KvCacheDecoder(const Transformer& model, int capacity, int max_chunk)
    : model_(model), cap_(capacity), chunk_(std::max(1, std::min(max_chunk, capacity))) {
  const ModelConfig& c = model.config();
  const ModelParallel& par = model.parallel();
  if (par.place.tp != 1 || par.place.pp != 1 || par.cp != 1)
    fail("KV-cache decoding needs the whole model on one process (tp = pp = cp = 1); got tp ", par.place.tp,
         ", pp ", par.place.pp, ", cp ", par.cp);
  if (!model.weights().embed.device.is_cpu())
    fail("KV-cache decoding runs on the CPU; the model's weights are on ", model.weights().embed.device.str());
  if (capacity < 1) fail("KV cache capacity ", capacity, ": expected at least one position");
  D_ = c.d_model, H_ = c.n_heads, KV_ = c.n_kv_heads, d_ = c.head_dim(), F_ = c.ffn_hidden, V_ = c.vocab_size;
  diff_ = c.attention == AttentionKind::Diff;
  arena_ = Arena(Device::cpu());
  arena_.begin_measure();
  build(arena_);
  require_memory("KV cache of " + std::to_string(capacity) + " positions", int64_t(arena_.used()),
                 std::to_string(c.n_layers) + " layers of keys and values, and scratch", Device::cpu(), 1,
                 "fewer positions (a shorter prompt or fewer new tokens)");
  arena_.commit();
  build(arena_);
}

void KvCacheDecoder::build(Arena& a) {
  const int64_t C = chunk_, kvd = 2 * KV_ * d_;
  // Attention as the block op sees it: diff = H heads of 2 maps with dv = 2d,
  // standard = 2H heads of 1 map with dv = d; either way heads·dv = D.
  const int64_t heads = diff_ ? H_ : 2 * H_;
  kcache_.clear(), vcache_.clear();
  for (int l = 0; l < model_.config().n_layers; ++l) {
    kcache_.push_back(a.alloc_f32({cap_, kvd}));
    vcache_.push_back(a.alloc_f32({cap_, kvd}));
  }
  tokens_ = a.alloc(DType::I32, {C});
  x_ = a.alloc_f32({C, D_});
  ln_ = a.alloc_f32({C, D_});
  rstd_ = a.alloc_f32({C});
  att_ = a.alloc_f32({C, D_});
  rope_ = a.alloc_f32({C, d_});
  q_ = a.alloc_f32({C, 2 * H_ * d_});
  for (int m = 0; m < 2; ++m) {
    o_[m] = a.alloc_f32({C, D_});
    bo_[m] = a.alloc_f32({C, D_});
    lse_[m] = a.alloc_f32({heads * C});
    blse_[m] = a.alloc_f32({heads * C});
  }
  sub_rstd_ = a.alloc_f32({C * H_});
  h1_ = a.alloc_f32({C, F_});
  h3_ = a.alloc_f32({C, F_});
  act_ = a.alloc_f32({C, F_});
  lnf_ = a.alloc_f32({1, D_});
  rstdf_ = a.alloc_f32({1});
  logits_ = a.alloc_f32({1, V_});
}

std::span<const float> KvCacheDecoder::append(std::span<const int32_t> tokens) {
  if (tokens.empty()) fail("KV-cache decoder: nothing to append (expected at least one token)");
  if (int64_t(tokens.size()) > cap_ - len_)
    fail("KV cache full: ", len_, " + ", tokens.size(), " tokens exceed its capacity of ", cap_, " positions");
  for (int32_t t : tokens)
    if (t < 0 || t >= V_) fail("token id ", t, " is outside the model's vocabulary [0, ", V_, ")");
  for (size_t i = 0; i < tokens.size(); i += size_t(chunk_))
    forward_chunk(tokens.data() + i, int(std::min(tokens.size() - i, size_t(chunk_))));
  return logits();
}

void KvCacheDecoder::truncate(int n) {
  if (n < 0 || n > len_) fail("KV cache truncate(", n, "): expected 0 <= n <= ", len_);
  len_ = n;
}

void KvCacheDecoder::forward_chunk(const int32_t* tokens, int n) {
  const Weights& w = model_.weights();
  const float eps = float(model_.config().norm_eps);
  std::copy(tokens, tokens + n, tokens_.i32());
  embedding_forward(x_.slice0(0, n), tokens_.slice0(0, n), w.embed);
  rope_table(rope_.slice0(0, n), model_.config().rope_theta, len_);
  for (int l = 0; l < model_.config().n_layers; ++l) layer_forward(l, n);
  len_ += n;
  // Only the last row's next-token logits are needed.
  rmsnorm_forward(lnf_, rstdf_, x_.slice0(n - 1, n), w.final_norm, eps);
  linear_forward(logits_, lnf_, w.lm_head);
}

void KvCacheDecoder::layer_forward(int l, int n) {
  const LayerWeights& W = model_.weights().layers[l];
  const float eps = float(model_.config().norm_eps);
  Tensor x = x_.slice0(0, n), ln = ln_.slice0(0, n), att = att_.slice0(0, n);
  // x = x + Wo·Attn(RMSNorm(x))
  rmsnorm_forward(ln, rstd_.slice0(0, n), x, W.attn_norm, eps);
  attention(l, n);
  matmul(x, att, false, W.wo, true, 1.f, 1.f);
  // x = x + W2 (silu(W1 h) * (W3 h)), h = RMSNorm(x)
  Tensor h1 = h1_.slice0(0, n), h3 = h3_.slice0(0, n), act = act_.slice0(0, n);
  rmsnorm_forward(ln, rstd_.slice0(0, n), x, W.mlp_norm, eps);
  linear_forward(h1, ln, W.w1);
  linear_forward(h3, ln, W.w3);
  swiglu_forward(act, h1, h3);
  matmul(x, act, false, W.w2, true, 1.f, 1.f);
}

// Queries of rows len_ .. len_+n−1 against every cached key 0 .. len_+n−1.
void KvCacheDecoder::attention(int l, int n) {
  const LayerWeights& W = model_.weights().layers[l];
  const int64_t p = len_;
  const int maps = diff_ ? 2 : 1;
  const int64_t heads = diff_ ? H_ : 2 * H_, dv = D_ / heads, kvh = diff_ ? KV_ : 2 * KV_;
  Tensor ln = ln_.slice0(0, n);

  // Project this chunk; its k and v rows go straight into the cache.
  Tensor q = q_.slice0(0, n), kc = kcache_[l].slice0(p, p + n), vc = vcache_[l].slice0(p, p + n);
  linear_forward(q, ln, W.wq);
  linear_forward(kc, ln, W.wk);
  linear_forward(vc, ln, W.wv);
  Tensor rope = rope_.slice0(0, n);
  rope_forward(q.view({1, n, 2 * H_, d_}), rope);
  rope_forward(kc.view({1, n, 2 * KV_, d_}), rope);

  // q (1,n,heads·maps,d); the whole cache as k (1,cap,kvh·maps,d) and v (1,cap,kvh,dv):
  // map m of head h reads query sub-head h·maps+m and key sub-head g·maps+m, g = h/(heads/kvh).
  Tensor qv = q.view({1, n, heads * maps, d_});
  Tensor kv = kcache_[l].view({1, cap_, kvh * maps, d_}), vv = vcache_[l].view({1, cap_, kvh, dv});
  auto outs = [&](Tensor* o, Tensor* lse, Tensor out[2], Tensor ls[2]) {
    for (int m = 0; m < 2; ++m) {
      out[m] = o[m].slice0(0, n).view({1, n, heads, dv});
      ls[m] = Tensor(lse[m].f32(), DType::F32, {1, heads, n});
    }
  };
  Tensor O[2], L[2];
  outs(o_, lse_, O, L);
  Tensor att = att_.slice0(0, n);
  if (!diff_) O[0] = att.view({1, n, heads, dv});  // standard: the heads' outputs are the attention output
  if (n == 1) {
    // One query: every cached key including its own is visible.
    attention_block_forward(maps, O, L, qv, kv, vv, {0, 1, 0, int(p + 1), false});
  } else {
    // The chunk against itself (causal), then against the earlier cache (all
    // visible), merged by log-sum-exp.
    attention_block_forward(maps, O, L, qv, kv, vv, {0, n, int(p), n, true});
    if (p > 0) {
      Tensor BO[2], BL[2];
      outs(bo_, blse_, BO, BL);
      attention_block_forward(maps, BO, BL, qv, kv, vv, {0, n, 0, int(p), false});
      for (int m = 0; m < maps; ++m) attention_merge(O[m], L[m], BO[m], BL[m], 0, n);
    }
  }
  if (diff_) {
    // o_h = RMSNorm(A1·V − λ A2·V; g_sub)·(1 − λ_init)
    const float lambda_init = float(ModelConfig::lambda_init(l));
    diff_combine_forward(att.view({1, n, H_, 2 * d_}), Tensor(sub_rstd_.f32(), DType::F32, {1, n, H_}), O[0],
                         O[1], {W.lq1, W.lk1, W.lq2, W.lk2, lambda_init}, W.subln, float(model_.config().norm_eps));
  }
}

}  // namespace dt
