// The analysis forward (eval/analysis_forward.hpp) against the Transformer it reads:
// same logits and loss, the same with a KV cache fed piecewise, logit
// quantization that is lossless at 16 bits and not at 4, and the activation
// statistics and attention rows it captures against a direct computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "eval/analysis_forward.hpp"
#include "eval/abs_histogram.hpp"
#include "eval/absmax_quantize.hpp"
#include "eval/quantization_sweep.hpp"
#include "kernels/ops.hpp"
#include "model/transformer.hpp"

namespace dt {
namespace {

struct Case {
  AttentionKind kind;
  int n_heads, n_kv_heads;
};

// A tiny model with weights large enough (std 0.2, not 0.02) that attention
// is far from uniform and the layers matter.
std::unique_ptr<Transformer> tiny_model(const Case& c, int T, uint64_t seed = 7) {
  ModelConfig cfg;
  cfg.vocab_size = 61;
  cfg.d_model = 8 * c.n_heads * 2;  // head_dim 8
  cfg.n_layers = 3;
  cfg.n_heads = c.n_heads;
  cfg.n_kv_heads = c.n_kv_heads;
  cfg.ffn_hidden = 40;
  cfg.attention = c.kind;
  cfg.init_std = 0.2;
  auto m = std::make_unique<Transformer>(cfg, 1, T);
  m->init_weights(seed);
  return m;
}

std::vector<int32_t> random_tokens(int n, int64_t V, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = int32_t(rng() % uint32_t(V));
  return t;
}

double max_abs(const float* p, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(p[i])));
  return m;
}

double rel_diff(const float* a, const float* b, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) e = std::max(e, double(std::fabs(a[i] - b[i])));
  return e / std::max(max_abs(b, n), 1e-30);
}

// A captured row of a differential model: both maps over keys 0..row, each summing to 1.
void expect_two_distributions(const AttentionRow& r) {
  ASSERT_EQ(r.a1.size(), size_t(r.row + 1));
  ASSERT_EQ(r.a2.size(), size_t(r.row + 1));
  double s1 = 0, s2 = 0;
  for (size_t j = 0; j < r.a1.size(); ++j) s1 += r.a1[j], s2 += r.a2[j];
  EXPECT_NEAR(s1, 1.0, 1e-5) << "layer " << r.layer << " head " << r.head << " row " << r.row;
  EXPECT_NEAR(s2, 1.0, 1e-5) << "layer " << r.layer << " head " << r.head << " row " << r.row;
}

class AnalysisForwardCases : public testing::TestWithParam<Case> {};

TEST_P(AnalysisForwardCases, LogitsAndLossEqualTheTransformerForward) {
  const int T = 40;
  auto model = tiny_model(GetParam(), T);
  const int64_t V = model->config().vocab_size;
  const std::vector<int32_t> window = random_tokens(T + 1, V, 3);
  const std::vector<int32_t> in(window.begin(), window.end() - 1), tgt(window.begin() + 1, window.end());
  const double ref_loss = model->forward(in.data(), tgt.data());

  AnalysisForward af(*model);
  af.forward(in);
  std::vector<float> z(static_cast<size_t>(T * V));
  af.logits(z.data(), 0, T);
  // Same ops in fp32 except attention (explicit softmax vs the tiled online
  // one): differences are a few fp32 ulps per layer, far below 1e-4.
  EXPECT_LT(rel_diff(z.data(), model->logits().f32(), z.size()), 1e-4);
  EXPECT_NEAR(af.loss_sum(window), ref_loss, 1e-5 * ref_loss);
  if (GetParam().kind == AttentionKind::Diff)
    for (int l = 0; l < 3; ++l) EXPECT_FLOAT_EQ(af.lambdas()[size_t(l)], model->lambda(l));
}

TEST_P(AnalysisForwardCases, PiecewiseFeedWithKvCacheEqualsOneFullPass) {
  const int T = 37;
  auto model = tiny_model(GetParam(), T);
  const int64_t V = model->config().vocab_size;
  const std::vector<int32_t> tok = random_tokens(T, V, 5);
  AnalysisForward full(*model), piece(*model);
  full.forward(tok);
  std::vector<float> all(static_cast<size_t>(T * V));
  full.logits(all.data(), 0, T);
  // 20 tokens, then 12, then one at a time: each call's rows match the full pass.
  std::vector<float> z(static_cast<size_t>(T * V));
  for (auto [b, e] : std::vector<std::pair<int, int>>{{0, 20}, {20, 32}, {32, 33}, {33, 34}, {34, 35}, {35, 37}}) {
    piece.forward(std::span<const int32_t>(tok).subspan(size_t(b), size_t(e - b)));
    EXPECT_EQ(piece.position(), e);
    piece.logits(z.data(), 0, e - b);
    EXPECT_LT(rel_diff(z.data(), &all[size_t(b * V)], size_t((e - b) * V)), 1e-5) << "rows " << b << ".." << e;
  }
}

TEST_P(AnalysisForwardCases, QueryRowBlocksGiveTheSameLogitsAndCaptures) {
  const int T = 45;
  auto model = tiny_model(GetParam(), T);
  const int64_t V = model->config().vocab_size;
  const std::vector<int32_t> tok = random_tokens(T, V, 8);
  AnalysisOptions opt;
  opt.capture_rows = {0, 17, 44};
  AnalysisForward whole(*model, opt);
  opt.max_score_floats = 7 * T;  // blocks of 7 query rows, the last one shorter
  AnalysisForward blocked(*model, opt);
  whole.forward(tok);
  blocked.forward(tok);
  std::vector<float> a(static_cast<size_t>(T * V)), b(static_cast<size_t>(T * V));
  whole.logits(a.data(), 0, T);
  blocked.logits(b.data(), 0, T);
  // Same arithmetic; only BLAS's blocking (summation order) differs with the shapes.
  EXPECT_LT(rel_diff(b.data(), a.data(), a.size()), 1e-5);
  ASSERT_EQ(blocked.attention_rows().size(), whole.attention_rows().size());
  for (size_t i = 0; i < whole.attention_rows().size(); ++i) {
    const AttentionRow &x = whole.attention_rows()[i], &y = blocked.attention_rows()[i];
    EXPECT_EQ(x.row, y.row);
    ASSERT_EQ(x.a1.size(), y.a1.size());
    for (size_t j = 0; j < x.a1.size(); ++j) EXPECT_NEAR(x.a1[j], y.a1[j], 1e-6);
    EXPECT_EQ(x.a2.size(), y.a2.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, AnalysisForwardCases,
                         testing::Values(Case{AttentionKind::Diff, 2, 1}, Case{AttentionKind::Diff, 2, 2},
                                         Case{AttentionKind::Standard, 2, 1}, Case{AttentionKind::Standard, 4, 2},
                                         Case{AttentionKind::DiffV2, 2, 1}),
                         [](const testing::TestParamInfo<Case>& i) {
                           const char* kind = i.param.kind == AttentionKind::Diff       ? "Diff"
                                              : i.param.kind == AttentionKind::DiffV2 ? "DiffV2"
                                                                                      : "Standard";
                           return std::string(kind) + "_H" + std::to_string(i.param.n_heads) + "_KV" +
                                  std::to_string(i.param.n_kv_heads);
                         });

// DIFF V2's captured rows: per output head, query heads 2h and 2h+1 as a1 and
// a2 (each a distribution), and lambda = σ(λ[row, h]) with λ = RMSNorm(x)·W_λᵀ,
// here checked for layer 0 against the ops applied to the weights directly.
TEST(AnalysisForwardDiffV2, CapturesBothQueryHeadsAndTheTokensGate) {
  const int T = 21;
  auto model = tiny_model({AttentionKind::DiffV2, 2, 1}, T);
  const ModelConfig& cfg = model->config();
  const int64_t D = cfg.d_model, H = cfg.n_heads;
  const std::vector<int32_t> tok = random_tokens(T, cfg.vocab_size, 4);
  AnalysisOptions opt;
  opt.capture_rows = {3, T - 1};
  AnalysisForward af(*model, opt);
  af.forward(tok);
  const LayerWeights& W = model->weights().layers[0];
  std::vector<float> x(size_t(T * D)), ln(size_t(T * D)), rstd(static_cast<size_t>(T)), lam(size_t(T * H));
  ops::embedding_forward(cpu_f32(x.data(), {T, D}), cpu_i32(const_cast<int32_t*>(tok.data()), {T}),
                         model->weights().embed);
  ops::rmsnorm_forward(cpu_f32(ln.data(), {T, D}), cpu_f32(rstd.data(), {T}), cpu_f32(x.data(), {T, D}),
                       W.attn_norm, float(cfg.norm_eps));
  ops::linear_forward(cpu_f32(lam.data(), {T, H}), cpu_f32(ln.data(), {T, D}), W.wlam);
  ASSERT_EQ(af.attention_rows().size(), size_t(cfg.n_layers * H * 2));
  int checked = 0;
  for (const AttentionRow& r : af.attention_rows()) {
    expect_two_distributions(r);
    EXPECT_GT(r.lambda, 0.f);
    EXPECT_LT(r.lambda, 1.f);
    if (r.layer != 0) continue;
    EXPECT_NEAR(r.lambda, 1.0 / (1.0 + std::exp(-double(lam[size_t(r.row * H + r.head)]))), 1e-6);
    ++checked;
  }
  EXPECT_EQ(checked, 2 * H);
}

TEST(QuantizeAbsmax, RoundsToTheRowScale) {
  // bits 3: scale = 1/3; −0.5·3 = −1.5 rounds away from zero to −2; 0.26·3 → 1.
  std::vector<float> s{1.f, -0.5f, 0.26f, 0.f};
  quantize_absmax(s.data(), 4, 3);
  EXPECT_FLOAT_EQ(s[0], 1.f);
  EXPECT_FLOAT_EQ(s[1], -2.f / 3);
  EXPECT_FLOAT_EQ(s[2], 1.f / 3);
  EXPECT_FLOAT_EQ(s[3], 0.f);
  std::vector<float> zeros(5, 0.f);
  quantize_absmax(zeros.data(), 5, 4);
  EXPECT_EQ(zeros, std::vector<float>(5, 0.f));
}

TEST(LogitQuantization, SixteenBitsKeepsTheLossFourBitsChangesIt) {
  const int T = 48;
  for (AttentionKind kind : {AttentionKind::Diff, AttentionKind::Standard}) {
    auto model = tiny_model({kind, 2, 1}, T);
    const std::vector<int32_t> w = random_tokens(T + 1, model->config().vocab_size, 11);
    AnalysisForward af(*model);
    const double exact = af.loss_sum(w) / T;
    af.options().logit_bits = 16;
    const double q16 = af.loss_sum(w) / T;
    af.options().logit_bits = 4;
    const double q4 = af.loss_sum(w) / T;
    // 16 bits moves each logit by at most max|s|/65534 (< 1e-3 here), so each
    // attention probability by < 0.1% relative; the loss moves far less.
    EXPECT_LT(std::abs(q16 - exact), 1e-4 * exact);
    // 4 bits: 7 levels per sign, steps of max|s|/7 — a visible change (about
    // 0.2% on these random-weight models, whose loss depends little on attention).
    EXPECT_GT(std::abs(q4 - exact), 5e-4 * exact) << "4-bit loss " << q4 << " vs " << exact;
    EXPECT_GT(std::abs(q4 - exact), 100 * std::abs(q16 - exact));
  }
}

TEST(AbsStats, MaxAndMedianWithinOneBin) {
  AbsStats s, a, b;
  std::vector<double> v;
  std::mt19937 rng(1);
  std::lognormal_distribution<float> dist(0.f, 3.f);
  for (int i = 0; i < 10001; ++i) {
    const float x = (i % 2 ? -1.f : 1.f) * dist(rng);
    s.add(x);
    (i < 5000 ? a : b).add(x);
    v.push_back(std::fabs(x));
  }
  std::sort(v.begin(), v.end());
  EXPECT_EQ(s.max(), v.back());
  // Bins are 2^-10 wide relative: the median is within 0.1%.
  EXPECT_NEAR(s.median(), v[5000], 1e-3 * v[5000]);
  a.merge(b);
  EXPECT_EQ(a.median(), s.median());
  EXPECT_EQ(a.count(), 10001);

  AbsStats even;  // 0, 0, 2, 4: median = (0 + 2) / 2
  for (float x : {0.f, 4.f, -2.f, 0.f}) even.add(x);
  EXPECT_NEAR(even.median(), 1.0, 1e-3);
  EXPECT_EQ(AbsStats().median(), 0.0);
}

TEST(ActivationStats, MatchADirectComputationOfLayerZeroLogitsAndTheFinalResidual) {
  const int T = 33;
  const Case c{AttentionKind::Diff, 2, 1};
  auto model = tiny_model(c, T);
  const ModelConfig& cfg = model->config();
  const int64_t D = cfg.d_model, d = cfg.head_dim(), nq = 2 * cfg.n_heads, nk = 2 * cfg.n_kv_heads;
  std::vector<int32_t> tok = random_tokens(T + 1, cfg.vocab_size, 9);
  model->forward(tok.data(), tok.data() + 1);  // for its final residual

  AnalysisOptions opt;
  opt.logit_stats = opt.hidden_stats = true;
  opt.capture_rows = {T - 1, 5};
  AnalysisForward af(*model, opt);
  af.forward(std::span<const int32_t>(tok).first(T));

  // Layer 0's q and k straight from the weights with the ops.
  const LayerWeights& W = model->weights().layers[0];
  std::vector<float> x(size_t(T * D)), ln(size_t(T * D)), rstd(static_cast<size_t>(T)), q(size_t(T * nq * d)),
      k(size_t(T * nk * d)), rope(size_t(T * d));
  ops::embedding_forward(cpu_f32(x.data(), {T, D}), cpu_i32(tok.data(), {T}), model->weights().embed);
  ops::rmsnorm_forward(cpu_f32(ln.data(), {T, D}), cpu_f32(rstd.data(), {T}), cpu_f32(x.data(), {T, D}),
                       W.attn_norm, float(cfg.norm_eps));
  ops::linear_forward(cpu_f32(q.data(), {T, nq * d}), cpu_f32(ln.data(), {T, D}), W.wq);
  ops::linear_forward(cpu_f32(k.data(), {T, nk * d}), cpu_f32(ln.data(), {T, D}), W.wk);
  ops::rope_table(cpu_f32(rope.data(), {T, d}), cfg.rope_theta, 0);
  ops::rope_forward(cpu_f32(q.data(), {1, T, nq, d}), cpu_f32(rope.data(), {T, d}));
  ops::rope_forward(cpu_f32(k.data(), {1, T, nk, d}), cpu_f32(rope.data(), {T, d}));
  // |q_s·k_s'/√d| for causal entries, every query sub-head s (both maps of each
  // differential head) against its key sub-head s' = 2·(h / group) + map.
  const int64_t group = cfg.n_heads / cfg.n_kv_heads;
  std::vector<double> logits;
  std::vector<std::vector<double>> row_last(static_cast<size_t>(nq));  // scores of query T−1, for the capture check
  for (int64_t s = 0; s < nq; ++s) {
    const int64_t ks = 2 * ((s / 2) / group) + s % 2;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e)
          dot += double(q[size_t((i * nq + s) * d + e)]) * k[size_t((j * nk + ks) * d + e)];
        dot /= std::sqrt(double(d));
        logits.push_back(std::fabs(dot));
        if (i == T - 1) row_last[size_t(s)].push_back(dot);
      }
  }
  std::sort(logits.begin(), logits.end());
  const AbsStats& st = af.logit_stats()[0];
  ASSERT_EQ(st.count(), int64_t(logits.size()));
  // fp32 dot products of 8 terms against float64: ~1e-6 relative. The median
  // also carries the histogram's 2^-10 bin width.
  EXPECT_NEAR(st.max(), logits.back(), 1e-5 * logits.back());
  const size_t n = logits.size();
  const double median = n % 2 ? logits[n / 2] : 0.5 * (logits[n / 2 - 1] + logits[n / 2]);
  EXPECT_NEAR(st.median(), median, 2e-3 * median);

  // The last layer's residual is the Transformer's stage output.
  std::vector<double> h;
  const float* out = model->output_act(0).f32();
  for (int64_t i = 0; i < T * D; ++i) h.push_back(std::fabs(out[i]));
  std::sort(h.begin(), h.end());
  const AbsStats& hs = af.hidden_stats()[size_t(cfg.n_layers - 1)];
  ASSERT_EQ(hs.count(), T * D);
  EXPECT_NEAR(hs.max(), h.back(), 1e-4 * h.back());
  EXPECT_NEAR(hs.median(), 0.5 * (h[h.size() / 2 - 1] + h[h.size() / 2]), 2e-3 * h[h.size() / 2]);

  // Captured rows: per layer, head and row, both maps are distributions, and
  // layer 0's row T−1 is the softmax of the scores above.
  ASSERT_EQ(af.attention_rows().size(), size_t(cfg.n_layers * cfg.n_heads * 2));
  for (const AttentionRow& r : af.attention_rows()) {
    expect_two_distributions(r);
    if (r.layer != 0 || r.row != T - 1) continue;
    for (int m = 0; m < 2; ++m) {
      const std::vector<double>& sc = row_last[size_t(2 * r.head + m)];
      const double mx = *std::max_element(sc.begin(), sc.end());
      double z = 0;
      for (double v : sc) z += std::exp(v - mx);
      for (size_t j = 0; j < sc.size(); ++j)
        EXPECT_NEAR((m ? r.a2 : r.a1)[j], std::exp(sc[j] - mx) / z, 1e-5) << "head " << r.head << " map " << m;
    }
  }
}

}  // namespace
}  // namespace dt
