#include "model/registry.hpp"

#include <algorithm>
#include <cmath>

namespace dt {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// A matrix gets weight decay and a bf16 compute copy; a vector neither.
void add(std::vector<ParamSpec>& r, std::string name, std::vector<int64_t> shape, TpSplit split, int layer,
         bool matrix, double init_std, bool grad_summed_over_tp = false) {
  ParamSpec p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.split = split;
  p.layer = layer;
  p.decay = matrix;
  p.has_compute_copy = matrix;
  p.grad_summed_over_tp = grad_summed_over_tp;
  p.init = init_std > 0 ? InitKind::Normal : InitKind::Ones;
  p.init_std = init_std;
  r.push_back(std::move(p));
}

}  // namespace

std::vector<ParamSpec> embedding_params(const ModelConfig& m) {
  std::vector<ParamSpec> r;
  add(r, "embed.weight", {m.vocab_size, m.d_model}, TpSplit::VocabRows, -1, true, m.init_std);
  return r;
}

std::vector<ParamSpec> layer_params(const ModelConfig& m, int l) {
  const int64_t D = m.d_model, F = m.ffn_hidden, d = m.head_dim(), KVd = m.kv_dim();
  const double std_ = m.init_std;
  const double std_out = m.init_std / std::sqrt(2.0 * m.n_layers);  // Wo and W2
  const std::string pre = "layers." + std::to_string(l) + ".";
  std::vector<ParamSpec> r;
  add(r, pre + "attn_norm.weight", {D}, TpSplit::Replicated, l, false, 0);
  add(r, pre + "attn.q_proj.weight", {m.q_dim(), D}, TpSplit::HeadRows, l, true, std_);
  add(r, pre + "attn.k_proj.weight", {KVd, D}, TpSplit::KvHeadRows, l, true, std_);
  add(r, pre + "attn.v_proj.weight", {KVd, D}, TpSplit::KvHeadRows, l, true, std_);
  add(r, pre + "attn.out_proj.weight", {D, D}, TpSplit::Columns, l, true, std_out);
  if (m.attention == AttentionKind::Diff) {
    // Every tp rank holds them whole but applies them to its own heads only.
    for (const char* v : {"lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"})
      add(r, pre + "attn." + v, {d}, TpSplit::Replicated, l, false, 0.1, true);
    add(r, pre + "attn.subln.weight", {2 * d}, TpSplit::Replicated, l, false, 0, true);
  }
  // diff_v2: λ[t, h] = x_t · W_λ[h] per token and head; rows split over tp with q's heads.
  if (m.attention == AttentionKind::DiffV2)
    add(r, pre + "attn.lambda_proj.weight", {m.n_heads, D}, TpSplit::HeadRows, l, true, std_);
  add(r, pre + "mlp_norm.weight", {D}, TpSplit::Replicated, l, false, 0);
  add(r, pre + "mlp.w1.weight", {F, D}, TpSplit::FfnRows, l, true, std_);
  add(r, pre + "mlp.w2.weight", {D, F}, TpSplit::Columns, l, true, std_out);
  add(r, pre + "mlp.w3.weight", {F, D}, TpSplit::FfnRows, l, true, std_);
  return r;
}

std::vector<ParamSpec> head_params(const ModelConfig& m) {
  std::vector<ParamSpec> r;
  add(r, "final_norm.weight", {m.d_model}, TpSplit::Replicated, m.n_layers, false, 0);
  if (!m.tie_embeddings)
    add(r, "lm_head.weight", {m.vocab_size, m.d_model}, TpSplit::VocabRows, m.n_layers, true, m.init_std);
  return r;
}

std::vector<ParamSpec> param_registry(const ModelConfig& m) {
  std::vector<ParamSpec> r = embedding_params(m);
  for (int l = 0; l < m.n_layers; ++l)
    for (ParamSpec& p : layer_params(m, l)) r.push_back(std::move(p));
  for (ParamSpec& p : head_params(m)) r.push_back(std::move(p));
  return r;
}

std::pair<int, int> stage_layers(int n_layers, int pp, int stage) {
  const int base = n_layers / pp, extra = n_layers % pp;
  const int first = stage * base + std::min(stage, extra);
  return {first, first + base + (stage < extra ? 1 : 0)};
}

bool stage_owns(const ParamSpec& p, int n_layers, int pp, int stage) {
  if (p.layer < 0) return stage == 0;
  if (p.layer >= n_layers) return stage == pp - 1;
  auto [first, last] = stage_layers(n_layers, pp, stage);
  return p.layer >= first && p.layer < last;
}

TpSlice tp_slice(const ParamSpec& p, int tp_rank, int tp) {
  TpSlice s;
  s.rows = p.shape[0];
  s.cols = p.shape.size() == 2 ? p.shape[1] : 1;
  switch (p.split) {
    case TpSplit::Replicated:
      break;
    case TpSplit::HeadRows:  // whole heads are contiguous rows, so every split is a row range
    case TpSplit::KvHeadRows:
    case TpSplit::FfnRows:
    case TpSplit::VocabRows:
      s.rows = p.shape[0] / tp;
      s.row0 = s.rows * tp_rank;
      break;
    case TpSplit::Columns:
      s.cols = p.shape[1] / tp;
      s.col0 = s.cols * tp_rank;
      break;
  }
  return s;
}

int64_t matmul_param_count(const ModelConfig& m) {
  const int64_t D = m.d_model, F = m.ffn_hidden, KVd = m.kv_dim();
  const int64_t lambda_proj = m.attention == AttentionKind::DiffV2 ? int64_t(m.n_heads) * D : 0;
  const int64_t per_layer = int64_t(m.q_dim()) * D + D * D + 2 * KVd * D + lambda_proj + 3 * F * D;
  return m.n_layers * per_layer + m.vocab_size * D;
}

double train_flops_per_token(const ModelConfig& m, int seq_len) {
  // Scores and probabilities·V each cost 2·T·q_dim multiply-adds per token:
  // q_dim = D for diff (2H maps of d for QKᵀ, H heads of 2d for PV) and
  // standard, 2D for diff_v2 (2H query heads of D/H); the causal mask halves
  // the average T. Backward is twice forward.
  const double attn_fwd = m.n_layers * 2.0 * 2.0 * double(seq_len) * m.q_dim() / 2.0;
  return 6.0 * double(matmul_param_count(m)) + 3.0 * attn_fwd;
}

}  // namespace dt
