// The KV-cache decoder computes what the full Transformer forward computes,
// position by position, for both attention kinds (grouped-query included),
// and greedy generation with the cache picks exactly the tokens the
// recompute-everything reference picks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "eval/generate/generate.hpp"
#include "eval/generate/kv_cache.hpp"

namespace dt {
namespace {

struct Shape {
  const char* name;
  AttentionKind kind;
  int heads, kv_heads, d_model;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

ModelConfig config_of(const Shape& s) {
  ModelConfig c;
  c.vocab_size = 61;
  c.d_model = s.d_model;
  c.n_layers = 3;  // three λ_init values
  c.n_heads = s.heads;
  c.n_kv_heads = s.kv_heads;
  c.ffn_hidden = 48;
  c.rope_theta = 500.0;  // positions rotate visibly within a short sequence
  c.attention = s.kind;
  return c;
}

// init_weights gives near-uniform attention (q·k ≈ 0) and a residual stream
// dominated by the embedding. Scale q/k up so the softmax maps are sharp and
// position-dependent, Wo and W2 up so every layer reaches the logits, and jitter
// every norm gain and the λ vectors, so a wrong head, kv group, position,
// λ or gain shows in the logits.
void make_attention_matter(Transformer& m) {
  m.init_weights(17);
  std::mt19937 rng(5);
  std::normal_distribution<float> n01(0.f, 1.f);
  auto scale = [](Tensor t, float s) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= s;
  };
  auto jitter = [&](Tensor t, float s) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] += s * n01(rng);
  };
  Weights w = m.weights();
  for (LayerWeights& L : w.layers) {
    scale(L.wq, 12.f), scale(L.wk, 12.f), scale(L.wo, 20.f), scale(L.w2, 20.f);
    if (m.config().attention == AttentionKind::DiffV2) scale(L.wlam, 40.f);  // λ of either sign, not all ≈ 0
    jitter(L.attn_norm, 0.3f), jitter(L.mlp_norm, 0.3f);
    if (m.config().attention == AttentionKind::Diff) {
      jitter(L.subln, 0.3f);
      for (Tensor t : {L.lq1, L.lk1, L.lq2, L.lk2}) jitter(t, 0.3f);
    }
  }
  jitter(w.final_norm, 0.3f);
}

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

// |a − b| <= 1e-4 · max|reference row|, element by element. Both sides are fp32
// with different summation orders (GEMM blocking over 1 row vs T rows, online
// softmax tiles split at other keys, a log-sum-exp merge for blocks), so they
// agree to a few ulp per op: the worst seen is 4e-6 after 3 layers. 1e-4
// leaves margin and is far below what a wrong position, head or λ changes
// (> 1e-2, TestModelsAttentionDependsOnPositions).
void expect_row_near(std::span<const float> got, const float* ref, int64_t V, const std::string& where) {
  float scale = 0;
  for (int64_t j = 0; j < V; ++j) scale = std::max(scale, std::fabs(ref[j]));
  ASSERT_GT(scale, 0.f);
  float worst = 0;
  for (int64_t j = 0; j < V; ++j) worst = std::max(worst, std::fabs(got[size_t(j)] - ref[j]));
  EXPECT_LE(worst, 1e-4f * scale) << where;
}

class KvCacheTest : public ::testing::TestWithParam<Shape> {};

const Shape kShapes[] = {
    {"DiffMha", AttentionKind::Diff, 2, 2, 32},
    {"DiffGqa", AttentionKind::Diff, 4, 2, 64},
    {"StandardMha", AttentionKind::Standard, 2, 2, 32},
    {"StandardGqa", AttentionKind::Standard, 2, 1, 32},
    {"DiffV2Gqa", AttentionKind::DiffV2, 2, 1, 32},
};
INSTANTIATE_TEST_SUITE_P(Kinds, KvCacheTest, ::testing::ValuesIn(kShapes),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(KvCacheTest, LogitsAtEveryPositionEqualFullForward) {
  const ModelConfig c = config_of(GetParam());
  const int T = 70;  // the full forward spans two 64-row query tiles
  Transformer full(c, 1, T);
  make_attention_matter(full);
  const std::vector<int32_t> tok = random_tokens(T, int(c.vocab_size), 11);
  const std::vector<int32_t> none(size_t(T), -1);
  full.forward(tok.data(), none.data());
  const float* ref = full.logits().f32();
  const int64_t V = c.vocab_size;

  KvCacheDecoder dec(full, T);
  for (int p = 0; p < T; ++p)
    expect_row_near(dec.next_token_logits(tok[size_t(p)]), ref + p * V, V, "one token at a time, position " +
                                                                                 std::to_string(p));
  EXPECT_EQ(dec.length(), T);

  // The prompt as one causal block, then one token at a time.
  dec.reset();
  const int P = 66;  // two 64-row query tiles in one causal block
  expect_row_near(dec.append(std::span(tok).first(P)), ref + (P - 1) * V, V, "block of 66");
  for (int p = P; p < T; ++p)
    expect_row_near(dec.next_token_logits(tok[size_t(p)]), ref + p * V, V, "after the block, position " +
                                                                                 std::to_string(p));

  // Blocks of 16 rows: each later block is causal against itself and sees the
  // cache before it (log-sum-exp merge); odd-sized appends straddle blocks.
  KvCacheDecoder chunked(full, T, 16);
  int at = 0;
  for (int n : {5, 23, 1, 17, 24}) {
    expect_row_near(chunked.append(std::span(tok).subspan(size_t(at), size_t(n))), ref + (at + n - 1) * V, V,
                    "chunked append ending at " + std::to_string(at + n - 1));
    at += n;
  }
  ASSERT_EQ(at, T);

  // Truncating to a shared prefix and continuing matches too.
  chunked.truncate(30);
  expect_row_near(chunked.next_token_logits(tok[30]), ref + 30 * V, V, "after truncate(30)");
}

TEST_P(KvCacheTest, TestModelsAttentionDependsOnPositions) {
  // Guards the test above: in the perturbed model the scores q·k are large
  // enough that moving the RoPE angles (another θ, same weights) changes the
  // logits well beyond the tolerance, so a wrong position or head would too.
  ModelConfig c = config_of(GetParam());
  Transformer m1(c, 1, 12);
  c.rope_theta = 10000.0;
  Transformer m2(c, 1, 12);
  make_attention_matter(m1);
  make_attention_matter(m2);
  const std::vector<int32_t> tok = random_tokens(12, int(c.vocab_size), 4);
  KvCacheDecoder a(m1, 12), b(m2, 12);
  std::span<const float> la = a.append(tok), lb = b.append(tok);
  float diff = 0, scale = 0;
  for (size_t j = 0; j < la.size(); ++j)
    diff = std::max(diff, std::fabs(la[j] - lb[j])), scale = std::max(scale, std::fabs(la[j]));
  EXPECT_GT(diff, 1e-2f * scale);
}

TEST_P(KvCacheTest, GreedyGenerationWithCacheEqualsFullRecompute) {
  const ModelConfig c = config_of(GetParam());
  Transformer m(c, 2, 16);  // another shape: the reference builds its own one-sequence copy
  make_attention_matter(m);
  const std::vector<int32_t> prompt = random_tokens(9, int(c.vocab_size), 23);
  GenerateOptions opt;
  opt.max_new_tokens = 24;
  opt.sampling.temperature = 0;
  const std::vector<int32_t> cached = generate(m, prompt, opt);
  opt.use_cache = false;
  const std::vector<int32_t> recomputed = generate(m, prompt, opt);
  ASSERT_EQ(cached.size(), 24u);
  EXPECT_EQ(cached, recomputed);
  // A model of one sequence long enough is used in place, with the same result.
  Transformer one(c, 1, 40);
  make_attention_matter(one);
  EXPECT_EQ(generate(one, prompt, opt), cached);
  // Not a degenerate repeat of one token.
  EXPECT_GT(std::count_if(cached.begin(), cached.end(), [&](int32_t t) { return t != cached[0]; }), 0);
}

TEST(KvCacheDecoder, RejectsOverflowAndBadTokens) {
  const ModelConfig c = config_of(kShapes[0]);
  Transformer m(c, 1, 4);
  m.init_weights(1);
  KvCacheDecoder dec(m, 4);
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_THROW(dec.append(five), Error);
  EXPECT_THROW(dec.next_token_logits(int32_t(c.vocab_size)), Error);
  EXPECT_THROW(dec.next_token_logits(-1), Error);
  EXPECT_EQ(dec.length(), 0);
  EXPECT_THROW(dec.truncate(1), Error);
}

TEST(Generate, StopsAtTheStopTokenAndSamplesInsideTheVocabLimit) {
  const ModelConfig c = config_of(kShapes[1]);
  Transformer m(c, 1, 8);
  make_attention_matter(m);
  const std::vector<int32_t> prompt = {1, 2, 3};
  GenerateOptions opt;
  opt.max_new_tokens = 40;
  opt.seed = 3;
  opt.vocab_limit = 10;
  std::vector<int32_t> streamed;
  opt.on_token = [&](int32_t t) { streamed.push_back(t); };
  const std::vector<int32_t> out = generate(m, prompt, opt);
  ASSERT_EQ(out.size(), 40u);
  EXPECT_EQ(streamed, out);
  for (int32_t t : out) EXPECT_LT(t, 10);
  // Same seed, same tokens; the first occurrence of a token ends the run when it is the stop token.
  opt.on_token = nullptr;
  opt.stop_token = out[5];
  const std::vector<int32_t> stopped = generate(m, prompt, opt);
  const size_t first = size_t(std::find(out.begin(), out.end(), out[5]) - out.begin());
  EXPECT_EQ(stopped, std::vector<int32_t>(out.begin(), out.begin() + long(first)));
  EXPECT_THROW(generate(m, {}, opt), Error);
  EXPECT_THROW(generate(m, {int32_t(c.vocab_size)}, opt), Error);
}

}  // namespace
}  // namespace dt
