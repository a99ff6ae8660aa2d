#include "model/layer.hpp"

#include "model/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace dt {

using namespace ops;

AttnGeometry attn_geometry(const ModelConfig& c, int tp) {
  const int64_t H = c.n_heads / tp, KV = c.n_kv_heads / tp, d = c.head_dim();
  if (c.attention == AttentionKind::Diff) return {2, H, KV, d, 2 * d, H};
  if (c.attention == AttentionKind::DiffV2) return {1, 2 * H, KV, d, d, H};
  return {1, H, KV, d, d, H};
}

// diff keeps both maps for the combine; standard attention's single map is
// the attention output itself.
void attention_map_outputs(const LayerCtx& c, LayerActs& A, Tensor O[2], Tensor L[2]) {
  if (c.g.maps == 2) {
    O[0] = A.diff.o1, O[1] = A.diff.o2, L[0] = A.diff.lse1, L[1] = A.diff.lse2;
  } else if (c.cfg->attention == AttentionKind::DiffV2) {
    O[0] = A.o, L[0] = A.lse;
  } else {
    O[0] = A.att.view({c.B, c.T, c.g.heads, c.g.dv}), L[0] = A.lse;
  }
}

namespace {

DiffLambda lambda_of(const LayerWeights& W, int layer) {
  return {W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(layer))};
}

// The heads' outputs from the maps' outputs. diff: out = RMSNorm(o1 − λ·o2; g_sub)·(1 − λ_init);
// diff_v2: out_h = o_2h − σ(λ_h)·o_2h+1 with λ (N,Hl) from the λ projection.
void combine_maps(const LayerCtx& c, const LayerWeights& W, LayerActs& A) {
  if (c.cfg->attention == AttentionKind::DiffV2) diff_v2_combine_forward(A.att, A.o, A.lam);
  if (c.cfg->attention != AttentionKind::Diff) return;
  diff_combine_forward(A.att.view({c.B, c.T, c.g.heads, c.g.dv}), A.diff.rstd, A.diff.o1, A.diff.o2,
                       lambda_of(W, c.layer), W.subln, float(c.cfg->norm_eps));
}

// Training: maps and combine in one fused kernel that saves the backward's state.
void fused_attention(const LayerCtx& c, const LayerWeights& W, LayerActs& A) {
  const int64_t B = c.B, T = c.T;
  const Tensor v = A.v.view({B, T, c.g.kv, c.g.dv});
  if (c.cfg->attention == AttentionKind::Diff) {
    diff_attention_forward(A.att.view({B, T, c.g.heads, c.g.dv}), A.diff, A.q, A.k, v, lambda_of(W, c.layer),
                           W.subln, float(c.cfg->norm_eps));
  } else if (c.cfg->attention == AttentionKind::DiffV2) {
    ops::attention_forward(A.o, A.lse, A.q, A.k, v);
    combine_maps(c, W, A);
  } else {
    ops::attention_forward(A.att.view({B, T, c.g.heads, c.g.dv}), A.lse, A.q, A.k, v);
  }
}

// Queries of positions p .. p+n−1 against every cached key 0 .. p+n−1, by the
// block ops: the rows against themselves (causal) and against the earlier
// cache (all visible), merged by log-sum-exp, so a prompt costs GEMMs.
void cached_attention(const LayerCtx& c, LayerActs& A) {
  const KvCacheView& kc = *c.cache;
  const AttnGeometry& g = c.g;
  const int64_t cap = kc.k.dim(0);
  const int p = int(kc.pos), n = int(c.T), maps = g.maps;
  const Tensor k = kc.k.view({1, cap, g.kv * maps, g.d}), v = kc.v.view({1, cap, g.kv, g.dv});
  Tensor O[2], L[2];
  attention_map_outputs(c, A, O, L);
  if (n == 1) {  // one query sees every cached key, its own included
    attention_block_forward(maps, O, L, A.q, k, v, {0, 1, 0, p + 1, false});
    return;
  }
  attention_block_forward(maps, O, L, A.q, k, v, {0, n, p, n, true});
  if (p == 0) return;
  attention_block_forward(maps, kc.blk_out, kc.blk_lse, A.q, k, v, {0, n, 0, p, false});
  for (int m = 0; m < maps; ++m) attention_merge(O[m], L[m], kc.blk_out[m], kc.blk_lse[m], 0, n);
}

// Columns [c0, c0 + w) of rows [0, rows) of x (rows, ld) into out (rows, w).
void gather_cols(float* out, const float* x, int64_t rows, int64_t ld, int64_t c0, int64_t w) {
  for (int64_t i = 0; i < rows; ++i) std::memcpy(out + i * w, x + i * ld + c0, size_t(w) * sizeof(float));
}

// cached_attention's result through explicit (rows, keys) probability matrices
// per head and map, which the observer sees (and may quantize) — an
// evaluation path, O(rows·keys) memory in blocks of query rows.
void observed_attention(const LayerCtx& c, LayerActs& A) {
  const KvCacheView& kc = *c.cache;
  AttentionObserver& obs = *c.observer;
  const AttnGeometry& g = c.g;
  const int maps = g.maps;
  const int64_t p0 = kc.pos, n = c.T, P = p0 + n, d = g.d, dv = g.dv, group = g.heads / g.kv;
  const int64_t nq = g.heads * maps, nk = g.kv * maps;
  Tensor O[2], L[2];
  attention_map_outputs(c, A, O, L);
  if (c.cfg->attention == AttentionKind::DiffV2) obs.on_v2_gates(c.layer, p0, A.lam.f32(), n, g.out_heads);
  const int64_t nb = std::clamp<int64_t>(obs.max_score_floats() / P, 1, n);
  std::vector<float> qh(size_t(nb * d)), kh(size_t(P * d)), vh(size_t(P * dv)), S(size_t(nb * P)), oh(size_t(nb * dv));
  const float scale = float(1.0 / std::sqrt(double(d)));
  for (int64_t h = 0; h < g.heads; ++h) {
    const int64_t kvh = h / group;
    gather_cols(vh.data(), kc.v.f32(), P, g.kv * dv, kvh * dv, dv);
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
      const int64_t rows = std::min(nb, n - i0), keys = p0 + i0 + rows;  // later keys are all masked
      for (int m = 0; m < maps; ++m) {
        // Map m of head h: query sub-head h·maps+m, key sub-head kvh·maps+m.
        gather_cols(qh.data(), A.q.f32() + i0 * nq * d, rows, nq * d, (h * maps + m) * d, d);
        gather_cols(kh.data(), kc.k.f32(), keys, nk * d, (kvh * maps + m) * d, d);
        matmul(cpu_f32(S.data(), {rows, keys}), cpu_f32(qh.data(), {rows, d}), false,
               cpu_f32(kh.data(), {keys, d}), true, scale);
        obs.on_logits(c.layer, h, m, p0 + i0, S.data(), rows, keys);
        // Row i (position p0+i0+i) sees keys 0 .. p0+i0+i: the causal mask.
#pragma omp parallel for schedule(static) if (rows * keys >= 65536)  // small blocks (decoding) stay serial
        for (int64_t i = 0; i < rows; ++i) {
          float* s = S.data() + i * keys;
          const int64_t valid = p0 + i0 + i + 1;
          float mx = -INFINITY;
          for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, s[j]);
          float sum = 0.f;
          for (int64_t j = 0; j < valid; ++j) sum += (s[j] = std::exp(s[j] - mx));
          const float inv = 1.f / sum;
          for (int64_t j = 0; j < valid; ++j) s[j] *= inv;
          std::fill(s + valid, s + keys, 0.f);
        }
        obs.on_probs(c.layer, h, m, p0 + i0, S.data(), rows, keys);
        matmul(cpu_f32(oh.data(), {rows, dv}), cpu_f32(S.data(), {rows, keys}), false,
               cpu_f32(vh.data(), {keys, dv}), false);
        for (int64_t i = 0; i < rows; ++i)
          std::memcpy(O[m].f32() + ((i0 + i) * g.heads + h) * dv, &oh[size_t(i * dv)], size_t(dv) * sizeof(float));
      }
    }
  }
}

}  // namespace

void attention_sublayer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A) {
  const AttnGeometry& g = c.g;
  const int64_t N = c.B * c.T;
  rmsnorm_forward(A.ln1, A.rstd1, A.x, W.attn_norm, float(c.cfg->norm_eps));
  // With a cache this call's keys and values go straight into its rows.
  Tensor k = A.k, v = A.v;
  if (c.cache) {
    const int64_t p = c.cache->pos;
    k = c.cache->k.slice0(p, p + c.T).view({1, c.T, g.kv * g.maps, g.d});
    v = c.cache->v.slice0(p, p + c.T);
  }
  column_parallel_forward(A.q.view({N, g.q_cols()}), A.ln1, W.wq);
  column_parallel_forward(k.view({N, g.k_cols()}), A.ln1, W.wk);
  column_parallel_forward(v, A.ln1, W.wv);
  if (c.cfg->attention == AttentionKind::DiffV2) column_parallel_forward(A.lam, A.ln1, W.wlam);
  rope_forward(A.q, c.rope);
  rope_forward(k, c.rope);
  if (c.cache) {
    if (c.observer) observed_attention(c, A);
    else cached_attention(c, A);
    combine_maps(c, W, A);
  } else if (c.ring) {
    cp_attention_forward(c, A);
    combine_maps(c, W, A);
  } else {
    fused_attention(c, W, A);
  }
}

void mlp_sublayer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A) {
  row_parallel_forward(c.tp, A.xm, A.x, A.att, W.wo);
  rmsnorm_forward(A.ln2, A.rstd2, A.xm, W.mlp_norm, float(c.cfg->norm_eps));
  column_parallel_forward(A.h1, A.ln2, W.w1);
  column_parallel_forward(A.h3, A.ln2, W.w3);
  swiglu_forward(A.act, A.h1, A.h3);
}

void layer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A, Tensor next) {
  attention_sublayer_forward(c, W, A);
  mlp_sublayer_forward(c, W, A);
  row_parallel_forward(c.tp, next, A.xm, A.act, W.w2);
}

void KvCache::alloc(Arena& a, const ModelConfig& c, int64_t positions) {
  const AttnGeometry g = attn_geometry(c);
  capacity = positions;
  k.clear(), v.clear();
  for (int l = 0; l < c.n_layers; ++l) {
    k.push_back(a.alloc_f32({positions, g.k_cols()}));
    v.push_back(a.alloc_f32({positions, g.v_cols()}));
  }
}

void SequenceBuffers::alloc(Arena& a, const ModelConfig& c, int64_t n) {
  g_ = attn_geometry(c);
  rows = n;
  const int64_t D = c.d_model, F = c.ffn_hidden;
  x = a.alloc_f32({n, D});
  tokens_ = a.alloc(DType::I32, {n});
  rope_ = a.alloc_f32({n, g_.d});
  ln_ = a.alloc_f32({n, D});
  rstd_ = a.alloc_f32({n});
  q_ = a.alloc_f32({n, g_.q_cols()});
  att_ = a.alloc_f32({n, g_.out_cols()});
  lam_ = a.alloc_f32({n, g_.out_heads});
  for (int m = 0; m < 2; ++m) {
    o_[m] = a.alloc_f32({n, g_.heads * g_.dv});
    bo_[m] = a.alloc_f32({n, g_.heads * g_.dv});
    lse_[m] = a.alloc_f32({g_.heads * n});
    blse_[m] = a.alloc_f32({g_.heads * n});
  }
  sub_rstd_ = a.alloc_f32({n * g_.heads});
  h1_ = a.alloc_f32({n, F});
  h3_ = a.alloc_f32({n, F});
  act_ = a.alloc_f32({n, F});
}

LayerActs SequenceBuffers::acts(int64_t n) const {
  DT_CHECK(n >= 1 && n <= rows, "sequence rows ", n, " of ", rows);
  const int64_t heads = g_.heads, dv = g_.dv;
  auto lse = [&](Tensor t) { return Tensor(t.ptr, DType::F32, {1, heads, n}, t.device); };
  LayerActs A;
  A.x = A.xm = x.slice0(0, n);
  A.ln1 = A.ln2 = ln_.slice0(0, n);
  A.rstd1 = A.rstd2 = rstd_.slice0(0, n);
  A.q = q_.slice0(0, n).view({1, n, heads * g_.maps, g_.d});
  A.att = att_.slice0(0, n);
  A.diff.o1 = o_[0].slice0(0, n).view({1, n, heads, dv});
  A.diff.o2 = o_[1].slice0(0, n).view({1, n, heads, dv});
  A.o = A.diff.o1;
  A.lam = lam_.slice0(0, n);
  A.diff.lse1 = A.lse = lse(lse_[0]);
  A.diff.lse2 = lse(lse_[1]);
  A.diff.rstd = Tensor(sub_rstd_.ptr, DType::F32, {1, n, heads}, sub_rstd_.device);
  A.h1 = h1_.slice0(0, n), A.h3 = h3_.slice0(0, n), A.act = act_.slice0(0, n);
  return A;
}

void SequenceBuffers::forward(const Weights& w, const ModelConfig& c, const KvCache& cache, const int32_t* tokens,
                              int64_t pos, int64_t n, AttentionObserver* observer,
                              const std::function<void(int, Tensor)>& after_layer) {
  DT_CHECK(n >= 1 && n <= rows && pos + n <= cache.capacity, "sequence rows ", pos, "+", n, " of ", rows,
           " (cache ", cache.capacity, ")");
  std::copy(tokens, tokens + n, tokens_.i32());
  Tensor xs = x.slice0(0, n);
  embedding_forward(xs, tokens_.slice0(0, n), w.embed);
  LayerCtx ctx;
  ctx.cfg = &c, ctx.g = g_, ctx.B = 1, ctx.T = n, ctx.rope = rope_.slice0(0, n), ctx.observer = observer;
  rope_table(ctx.rope, c.rope_theta, pos);
  LayerActs A = acts(n);
  for (int l = 0; l < c.n_layers; ++l) {
    const KvCacheView kc = cache_view(cache, l, pos, n);
    ctx.layer = l, ctx.cache = &kc;
    layer_forward(ctx, w.layers[size_t(l)], A, A.xm);
    if (after_layer) after_layer(l, xs);
  }
}

KvCacheView SequenceBuffers::cache_view(const KvCache& cache, int layer, int64_t pos, int64_t n) const {
  DT_CHECK(pos + n <= cache.capacity, "KV cache positions ", pos, "+", n, " of ", cache.capacity);
  KvCacheView kc;
  kc.k = cache.k[size_t(layer)], kc.v = cache.v[size_t(layer)], kc.pos = pos;
  for (int m = 0; m < 2; ++m) {
    kc.blk_out[m] = bo_[m].slice0(0, n).view({1, n, g_.heads, g_.dv});
    kc.blk_lse[m] = Tensor(blse_[m].ptr, DType::F32, {1, g_.heads, n}, blse_[m].device);
  }
  return kc;
}

}  // namespace dt
