// Activation recomputation trades memory for compute without changing a bit
// of the result: the backward reruns the same kernels on the same inputs.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "model/transformer.hpp"

namespace dt {
namespace {

struct Run {
  double loss;
  std::vector<std::vector<float>> grads;
  size_t act_bytes;
};

Run run(AttentionKind kind, Recompute rc) {
  const ModelConfig c{.vocab_size = 48, .d_model = 32, .n_layers = 3, .n_heads = 2, .n_kv_heads = 1,
                      .ffn_hidden = 40, .attention = kind, .recompute = rc};
  const int B = 2, T = 70;  // two query tiles
  Transformer m(c, B, T);
  m.init_weights(5);
  std::mt19937 rng(3);
  std::vector<int32_t> tok(B * T), tgt(B * T);
  for (auto& t : tok) t = int32_t(rng() % 48);
  for (auto& t : tgt) t = int32_t(rng() % 48);
  m.zero_grads();
  Run r;
  r.loss = m.forward_backward(tok.data(), tgt.data(), 1.f / (B * T));
  for (const Tensor& g : m.grads()) r.grads.emplace_back(g.f32(), g.f32() + g.numel());
  r.act_bytes = m.activation_bytes();
  return r;
}

void check(AttentionKind kind) {
  const Run none = run(kind, Recompute::None);
  for (Recompute rc : {Recompute::Attention, Recompute::Full}) {
    const Run r = run(kind, rc);
    EXPECT_EQ(r.loss, none.loss);
    ASSERT_EQ(r.grads.size(), none.grads.size());
    for (size_t i = 0; i < r.grads.size(); ++i)
      EXPECT_EQ(0, std::memcmp(r.grads[i].data(), none.grads[i].data(), r.grads[i].size() * 4)) << "tensor " << i;
  }
  // Less is kept as more is recomputed.
  EXPECT_LT(run(kind, Recompute::Attention).act_bytes, none.act_bytes);
  EXPECT_LT(run(kind, Recompute::Full).act_bytes, run(kind, Recompute::Attention).act_bytes);
}

TEST(Recompute, DiffGivesIdenticalLossAndGradients) { check(AttentionKind::Diff); }
TEST(Recompute, StandardGivesIdenticalLossAndGradients) { check(AttentionKind::Standard); }
TEST(Recompute, DiffV2GivesIdenticalLossAndGradients) { check(AttentionKind::DiffV2); }

}  // namespace
}  // namespace dt
