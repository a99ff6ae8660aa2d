// The one parameter registry (DESIGN §4a): every parameter's export name, global
// shape, tensor-parallel split, owning layer, weight decay, initialisation, and
// how training treats it (tp gradient sum, bf16 compute copy). Model
// construction (the order of the views), sharding, gradient reduction,
// clipping, checkpoints and export all walk this list.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"

namespace dt {

enum class TpSplit {
  Replicated,    // norms, λ vectors, g_sub
  HeadRows,      // Wq, diff_v2's W_λ: rows in units of one head (of the model's kind)
  KvHeadRows,    // Wk, Wv: rows in units of one kv head (2d rows)
  FfnRows,       // W1, W3: rows
  Columns,       // Wo, W2: input columns (row-parallel linear)
  VocabRows,     // E, W_out: vocabulary rows
};

enum class InitKind { Normal, Ones };

struct ParamSpec {
  std::string name;            // export name, e.g. "layers.3.attn.q_proj.weight"
  std::vector<int64_t> shape;  // global shape, [out, in] for matrices
  TpSplit split = TpSplit::Replicated;
  int layer = -1;              // owning layer; -1 = embedding (first stage), n_layers = final norm/head
  bool decay = false;          // AdamW weight decay applies (matrices only)
  // Replicated over tp, but each tp rank's gradient covers only its own heads
  // (λ vectors, g_sub): the gradient is summed over tp before the update.
  bool grad_summed_over_tp = false;
  // A matrix the GEMMs read: on CUDA through a bf16 copy of the f32 master
  // (Transformer::build_compute_weights); the matrices.
  bool has_compute_copy = false;
  InitKind init = InitKind::Normal;
  double init_std = 0.0;

  int64_t numel() const;
};

// In model order: embed, then per layer, then final norm and (untied) head.
std::vector<ParamSpec> param_registry(const ModelConfig& m);
// Its three parts, for a caller that must not list every layer (the memory
// estimate of a config with n_layers: 1000000000): embed.weight; layer l's
// parameters; final_norm.weight and lm_head.weight (unless tied).
std::vector<ParamSpec> embedding_params(const ModelConfig& m);
std::vector<ParamSpec> layer_params(const ModelConfig& m, int l);
std::vector<ParamSpec> head_params(const ModelConfig& m);

// Which part of the model one rank holds: a tensor-parallel shard of a
// pipeline stage.
struct Placement {
  int tp_rank = 0, tp = 1;
  int pp_stage = 0, pp = 1;
};

// Layers [first, last) of a pipeline stage: contiguous, earlier stages take the remainder.
std::pair<int, int> stage_layers(int n_layers, int pp, int stage);
// Whether the stage holds the parameter (embedding: first stage; final norm and head: last).
bool stage_owns(const ParamSpec& p, int n_layers, int pp, int stage);

// The part of a parameter one tensor-parallel rank holds, in global
// coordinates: rows [row0, row0+rows) × columns [col0, col0+cols) of the
// [out, in] matrix (vectors: rows only, cols = 1).
struct TpSlice {
  int64_t row0 = 0, rows = 0, col0 = 0, cols = 1;
  int64_t numel() const { return rows * cols; }
};
TpSlice tp_slice(const ParamSpec& p, int tp_rank, int tp);
// Global flat index of local element i of that slice.
inline int64_t global_index(const ParamSpec& p, const TpSlice& s, int64_t i) {
  const int64_t full_cols = p.shape.size() == 2 ? p.shape[1] : 1;
  return (s.row0 + i / s.cols) * full_cols + s.col0 + i % s.cols;
}

// Parameters that multiply activations (everything but the embedding lookup
// and vectors), for the 6·N FLOPs estimate; the LM head is counted even when tied.
int64_t matmul_param_count(const ModelConfig& m);
// Training FLOPs per token: 6·N_matmul + attention (QKᵀ and PV, forward 2·2·T·D/2
// on average under the causal mask, ×3 for forward + backward).
double train_flops_per_token(const ModelConfig& m, int seq_len);

}  // namespace dt
