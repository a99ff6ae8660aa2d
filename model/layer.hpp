// One transformer layer's forward (DESIGN §2), the only copy of the block:
//   xm = x + Wo · Attn(RMSNorm(x; g_attn))
//   x' = xm + W2 (silu(W1 h) * (W3 h)),  h = RMSNorm(xm; g_mlp)
// with Wq, Wk, Wv, W1, W3 column-parallel and Wo, W2 row-parallel
// (model/tensor_parallel.hpp). Training and perplexity (Transformer),
// generation (KvCacheDecoder) and the analyses (AnalysisForward) all run it;
// they differ only in where attention's keys come from and who watches it:
//   - LayerCtx without a cache: B sequences of T rows attend causally among
//     themselves with the fused kernels, saving what the backward reads
//     (or, with a CpRing, around the context-parallel ring);
//   - with a KvCacheView: the rows are positions pos .. pos+T−1 of one sequence
//     (B = 1); their keys and values are written into the cache, and the
//     queries attend to every cached position up to their own;
//   - with an AttentionObserver as well: the same, with attention computed as
//     explicit score matrices that the observer may quantize and record.
// The attention kind enters in three places of layer.cpp: attn_geometry (how
// many softmax maps share a V head), fused_attention (its training kernel) and
// combine_maps (how the maps' outputs become the heads' outputs).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/arena.hpp"
#include "core/config.hpp"
#include "model/tensor_parallel.hpp"

namespace dt {

// Attention as the block ops see it on one tp rank: `maps` softmax maps per
// head share one V head. diff: Hl heads of 2 maps, dv = 2d; standard: Hl
// heads of 1 map, dv = d (d = D/H); diff_v2: 2Hl heads of 1 map, dv = d
// (d = D/H), combined in pairs into Hl output heads. Output heads·dv = D/tp.
struct AttnGeometry {
  int maps = 1;
  int64_t heads = 0, kv = 0;  // heads of the block ops; V heads (kv head g serves heads g·heads/kv ..)
  int64_t d = 0, dv = 0;      // q/k head size; V head size
  int64_t out_heads = 0;      // heads after the combine (diff_v2: heads / 2; else heads)
  int64_t q_heads() const { return heads * maps; }    // q (B,T,q_heads,d): sub-heads 2h, 2h+1 for diff
  int64_t k_heads() const { return kv * maps; }       // k (B,T,k_heads,d)
  int64_t q_cols() const { return q_heads() * d; }    // rows of Wq
  int64_t k_cols() const { return k_heads() * d; }    // rows of Wk
  int64_t v_cols() const { return kv * dv; }          // rows of Wv
  int64_t out_cols() const { return out_heads * dv; } // the heads' output, columns of Wo
};
AttnGeometry attn_geometry(const ModelConfig& c, int tp = 1);

// The weights of one layer (this rank's shard).
struct LayerWeights {
  Tensor attn_norm, wq, wk, wv, wo;   // (D) (Dl,D) (kvl,D) (kvl,D) (D,Dl); Dl = D/tp, kvl = 2·KV·d/tp
  Tensor lq1, lk1, lq2, lk2, subln;   // (d) ×4, (2d); diff attention only
  Tensor wlam;                        // (Hl,D) diff_v2's λ projection only
  Tensor mlp_norm, w1, w2, w3;        // (D) (Fl,D) (D,Fl) (Fl,D); Fl = Fh/tp
};

// One layer's forward state for B sequences of T rows (N = B·T). Training
// keeps it per layer for the backward; the decoders reuse one for every layer
// with x = xm (the residual updated in place).
struct LayerActs {
  Tensor x;            // (N,D) layer input (residual stream)
  Tensor ln1, rstd1;   // (N,D), (N)
  Tensor q, k, v;      // (B,T,q_heads,d), (B,T,k_heads,d), v (N,v_cols), after RoPE; k, v unused with a cache
  Tensor att;          // (N,Dl) attention output before Wo
  ops::DiffAttnCache diff;  // diff: the maps' outputs o1, o2 (B,T,Hl,2d), lse1, lse2 (B,Hl,T), rstd (B,T,Hl)
  Tensor lse;          // (B,heads,T) standard attention and diff_v2
  Tensor o, lam;       // diff_v2: attention output (B,T,2Hl,d) before the combine; λ (N,Hl) before σ
  Tensor xm;           // (N,D) residual after attention
  Tensor ln2, rstd2;   // (N,D), (N)
  Tensor h1, h3, act;  // (N,Fl)
};

// Keys and values of one layer for the positions before this call's rows.
struct KvCacheView {
  Tensor k, v;   // (cap, k_cols) after RoPE, (cap, v_cols); rows [0, pos) hold earlier positions
  int64_t pos = 0;
  Tensor blk_out[2], blk_lse[2];  // scratch (T, heads, dv), (heads·T): the part against earlier positions
};

// Watches attention computed as explicit scores (analyses). Scores of query
// rows are produced in blocks of max(1, max_score_floats() / keys) rows.
class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  virtual int64_t max_score_floats() const = 0;
  // S (rows, keys): q·kᵀ/√d of map m of head h for query positions p0 .. p0+rows−1;
  // row i sees keys 0 .. p0+i (the rest are masked). It may change the visible
  // entries in place (quantization) before the softmax.
  virtual void on_logits(int layer, int64_t head, int map, int64_t p0, float* S, int64_t rows, int64_t keys) = 0;
  // A (rows, keys): the softmax probabilities, zero beyond each row's causal range.
  virtual void on_probs(int layer, int64_t head, int map, int64_t p0, const float* A, int64_t rows, int64_t keys) = 0;
  // diff_v2, before the layer's heads: lam (rows, out_heads) is λ before the
  // sigmoid of positions p0 .. p0+rows−1; output head h is query head 2h minus
  // σ(lam[., h]) times query head 2h+1 (the heads on_probs reports).
  virtual void on_v2_gates(int /*layer*/, int64_t /*p0*/, const float* /*lam*/, int64_t /*rows*/,
                           int64_t /*out_heads*/) {}
};

// Context-parallel ring state (model/context_parallel_attention.cpp): the K/V
// blocks in flight, their gradients, and the per-block results.
struct CpRing {
  Communicator* comm = nullptr;
  int rank = 0, size = 1;
  Tensor k[2], v[2], dk[2], dv[2];  // (B,T,2KVl,d), (N,kvl)
  Tensor blk_out[2], blk_lse[2];    // (B,T,heads,dv), (B,heads,T)
  Tensor dpre;                      // (B,T,heads,dv) backward scratch
};

// Everything about one call of one layer besides its weights and buffers.
struct LayerCtx {
  const ModelConfig* cfg = nullptr;
  AttnGeometry g;
  int layer = 0;           // global index (λ_init depends on it)
  int64_t B = 1, T = 1;    // this call: B sequences of T rows
  Tensor rope;             // (T, d) RoPE table of the rows' positions
  TensorParallel tp;
  const CpRing* ring = nullptr;          // context parallelism (training)
  const KvCacheView* cache = nullptr;    // incremental decoding (B = 1)
  AttentionObserver* observer = nullptr;  // explicit attention (needs a cache)
};

// A.x → A.att: attn_norm, q/k/v projections, RoPE, attention (before Wo).
void attention_sublayer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A);
// A.att → A.act: xm = x + Wo·att, mlp_norm, W1, W3, SwiGLU (before W2).
void mlp_sublayer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A);
// The whole layer: next (N,D) = xm + W2·act. next may be A.xm (in place).
void layer_forward(const LayerCtx& c, const LayerWeights& W, LayerActs& A, Tensor next);
// Where the softmax maps' outputs O[m] (B,T,heads,dv) and log-sum-exp L[m]
// (B,heads,T) live in A (the block ops write them; combine_maps reads them).
void attention_map_outputs(const LayerCtx& c, LayerActs& A, Tensor O[2], Tensor L[2]);
// Context-parallel attention: the maps' outputs of A.q against every rank's
// A.k/A.v around c.ring, before the combine (model/context_parallel_attention.cpp).
void cp_attention_forward(const LayerCtx& c, LayerActs& A);

// ---- one sequence with a KV cache (generation and analyses) -----------------

// Keys and values of every layer for positions [0, capacity) of one sequence.
struct KvCache {
  std::vector<Tensor> k, v;  // per layer: (capacity, k_cols) after RoPE, (capacity, v_cols)
  int64_t capacity = 0;
  void alloc(Arena& a, const ModelConfig& c, int64_t positions);
};

struct Weights;

// Buffers for up to `rows` positions of one sequence (B = 1), shared by every
// layer: the residual is updated in place (xm = x) and the MLP's norm reuses
// the attention's (ln2 = ln1).
struct SequenceBuffers {
  int64_t rows = 0;
  Tensor x;  // (rows, D) the residual stream
  void alloc(Arena& a, const ModelConfig& c, int64_t rows);
  // tokens (n) at positions pos .. pos+n−1 (n <= rows): embedding, then every
  // layer of w with their keys and values appended to `cache`; x then holds
  // the last layer's output. after_layer(l, x (n, D)) sees each layer's output.
  void forward(const Weights& w, const ModelConfig& c, const KvCache& cache, const int32_t* tokens, int64_t pos,
               int64_t n, AttentionObserver* observer = nullptr,
               const std::function<void(int, Tensor)>& after_layer = {});
  // Views for positions pos .. pos+n−1 (n <= rows) of layer l of `cache`.
  LayerActs acts(int64_t n) const;
  KvCacheView cache_view(const KvCache& cache, int layer, int64_t pos, int64_t n) const;

 private:
  AttnGeometry g_;
  Tensor tokens_, rope_, ln_, rstd_, q_, att_, lam_, o_[2], lse_[2], bo_[2], blse_[2], sub_rstd_, h1_, h3_, act_;
};

}  // namespace dt
