#include "model/registry.hpp"

#include <cmath>

namespace dt {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<ParamSpec> param_registry(const ModelConfig& m) {
  const int64_t D = m.d_model, F = m.ffn_hidden, V = m.vocab_size, d = m.head_dim(), KVd = m.kv_dim();
  const double std_ = m.init_std;
  const double std_out = m.init_std / std::sqrt(2.0 * m.n_layers);  // Wo and W2
  std::vector<ParamSpec> r;
  auto add = [&](std::string name, std::vector<int64_t> shape, TpSplit split, int layer, bool matrix,
                 double init_std) {
    ParamSpec p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.split = split;
    p.layer = layer;
    p.decay = matrix;
    p.init = init_std > 0 ? InitKind::Normal : InitKind::Ones;
    p.init_std = init_std;
    r.push_back(std::move(p));
  };
  add("embed.weight", {V, D}, TpSplit::VocabRows, -1, true, std_);
  for (int l = 0; l < m.n_layers; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".";
    add(pre + "attn_norm.weight", {D}, TpSplit::Replicated, l, false, 0);
    add(pre + "attn.q_proj.weight", {D, D}, TpSplit::DiffHeadRows, l, true, std_);
    add(pre + "attn.k_proj.weight", {KVd, D}, TpSplit::KvHeadRows, l, true, std_);
    add(pre + "attn.v_proj.weight", {KVd, D}, TpSplit::KvHeadRows, l, true, std_);
    add(pre + "attn.out_proj.weight", {D, D}, TpSplit::Columns, l, true, std_out);
    if (m.attention == AttentionKind::Diff) {
      for (const char* v : {"lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"})
        add(pre + "attn." + v, {d}, TpSplit::Replicated, l, false, 0.1);
      add(pre + "attn.subln.weight", {2 * d}, TpSplit::Replicated, l, false, 0);
    }
    add(pre + "mlp_norm.weight", {D}, TpSplit::Replicated, l, false, 0);
    add(pre + "mlp.w1.weight", {F, D}, TpSplit::FfnRows, l, true, std_);
    add(pre + "mlp.w2.weight", {D, F}, TpSplit::Columns, l, true, std_out);
    add(pre + "mlp.w3.weight", {F, D}, TpSplit::FfnRows, l, true, std_);
  }
  add("final_norm.weight", {D}, TpSplit::Replicated, m.n_layers, false, 0);
  if (!m.tie_embeddings) add("lm_head.weight", {V, D}, TpSplit::VocabRows, m.n_layers, true, std_);
  return r;
}

int64_t matmul_param_count(const ModelConfig& m) {
  const int64_t D = m.d_model, F = m.ffn_hidden, KVd = m.kv_dim();
  const int64_t per_layer = 2 * D * D + 2 * KVd * D + 3 * F * D;
  return m.n_layers * per_layer + m.vocab_size * D;
}

double train_flops_per_token(const ModelConfig& m, int seq_len) {
  // Scores and probabilities·V each cost 2·T·(2H·d) = 2·T·D multiply-adds per
  // token for both attention kinds (diff: 2H maps of d for QKᵀ, H heads of 2d
  // for PV); the causal mask halves the average T. Backward is twice forward.
  const double attn_fwd = m.n_layers * 2.0 * 2.0 * double(seq_len) * m.d_model / 2.0;
  return 6.0 * double(matmul_param_count(m)) + 3.0 * attn_fwd;
}

}  // namespace dt
