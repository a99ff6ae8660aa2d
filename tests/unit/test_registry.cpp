// The parameter registry drives the model: its flags mark what the training
// path treats specially (the tp gradient sum, the bf16 compute copies), and
// the model's named weight views are the registry's entries, laid out in the
// registry's order.
#include <gtest/gtest.h>

#include <string>

#include "model/registry.hpp"
#include "model/transformer.hpp"

namespace dt {
namespace {

ModelConfig small(AttentionKind kind, bool tie = false) {
  return {.vocab_size = 48, .d_model = 32, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .ffn_hidden = 40,
          .attention = kind, .tie_embeddings = tie};
}

bool is_head_local_vector(const std::string& name) {
  for (const char* v : {".attn.lambda_q1", ".attn.lambda_k1", ".attn.lambda_q2", ".attn.lambda_k2", ".attn.subln.weight"})
    if (name.size() > std::string(v).size() && name.compare(name.size() - std::string(v).size(), std::string::npos, v) == 0)
      return true;
  return false;
}

// λ vectors and g_sub are held whole by every tp rank but each rank's gradient
// covers only its heads, so exactly they are summed over tp; the matrices, and
// only they, have a bf16 compute copy.
TEST(Registry, FlagsMarkTheHeadLocalVectorsAndTheMatrices) {
  for (AttentionKind kind : {AttentionKind::Diff, AttentionKind::Standard}) {
    int summed = 0;
    for (const ParamSpec& p : param_registry(small(kind))) {
      EXPECT_EQ(p.grad_summed_over_tp, is_head_local_vector(p.name)) << p.name;
      if (p.grad_summed_over_tp) EXPECT_EQ(p.split, TpSplit::Replicated) << p.name;
      EXPECT_EQ(p.has_compute_copy, p.shape.size() == 2) << p.name;
      summed += p.grad_summed_over_tp;
    }
    EXPECT_EQ(summed, kind == AttentionKind::Diff ? 5 * 2 : 0) << "five per diff layer, none for standard";
  }
}

// Each named view of the model is the registry entry of that name (a swapped
// lambda_q1/lambda_k1 would train identically, λ being symmetric in them, but
// export wrong names), and the views follow the registry's order in the arena.
TEST(Registry, ModelWeightViewsAreTheRegistryEntriesInOrder) {
  for (AttentionKind kind : {AttentionKind::Diff, AttentionKind::Standard})
    for (bool tie : {false, true}) {
      const ModelConfig c = small(kind, tie);
      Transformer m(c, 1, 8);
      const Weights& w = m.weights();
      auto at = [&](const std::string& name) { return m.param(name).ptr; };
      EXPECT_EQ(w.embed.ptr, at("embed.weight"));
      EXPECT_EQ(w.final_norm.ptr, at("final_norm.weight"));
      EXPECT_EQ(w.lm_head.ptr, at(tie ? "embed.weight" : "lm_head.weight"));
      for (int l = 0; l < c.n_layers; ++l) {
        const LayerWeights& L = w.layers[size_t(l)];
        const std::string pre = "layers." + std::to_string(l) + ".";
        EXPECT_EQ(L.attn_norm.ptr, at(pre + "attn_norm.weight"));
        EXPECT_EQ(L.wq.ptr, at(pre + "attn.q_proj.weight"));
        EXPECT_EQ(L.wk.ptr, at(pre + "attn.k_proj.weight"));
        EXPECT_EQ(L.wv.ptr, at(pre + "attn.v_proj.weight"));
        EXPECT_EQ(L.wo.ptr, at(pre + "attn.out_proj.weight"));
        EXPECT_EQ(L.mlp_norm.ptr, at(pre + "mlp_norm.weight"));
        EXPECT_EQ(L.w1.ptr, at(pre + "mlp.w1.weight"));
        EXPECT_EQ(L.w2.ptr, at(pre + "mlp.w2.weight"));
        EXPECT_EQ(L.w3.ptr, at(pre + "mlp.w3.weight"));
        if (kind == AttentionKind::Diff) {
          EXPECT_EQ(L.lq1.ptr, at(pre + "attn.lambda_q1"));
          EXPECT_EQ(L.lk1.ptr, at(pre + "attn.lambda_k1"));
          EXPECT_EQ(L.lq2.ptr, at(pre + "attn.lambda_q2"));
          EXPECT_EQ(L.lk2.ptr, at(pre + "attn.lambda_k2"));
          EXPECT_EQ(L.subln.ptr, at(pre + "attn.subln.weight"));
        } else {
          EXPECT_FALSE(L.lq1.defined() || L.subln.defined()) << "standard attention has no λ or g_sub";
        }
      }
      for (size_t i = 1; i < m.params().size(); ++i)
        EXPECT_LT(m.params()[i - 1].f32(), m.params()[i].f32()) << m.registry()[i].name << " out of registry order";
    }
}

}  // namespace
}  // namespace dt
