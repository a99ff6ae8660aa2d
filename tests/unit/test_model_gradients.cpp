// Whole-model gradients against central finite differences of the loss.
//
// The model runs in fp32, so per-element finite differences would drown in
// rounding; instead each parameter tensor is checked along a random direction
// u: (L(θ + εu) − L(θ − εu)) / 2ε must equal ⟨∇L, u⟩. The directional
// derivative sums thousands of gradient entries, so its signal stands well
// above the fp32 noise of the loss (~1e-7·L / ε).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/transformer.hpp"

namespace dt {
namespace {

ModelConfig tiny_config(AttentionKind kind, int heads, int kv_heads, bool tied) {
  return {.vocab_size = 40, .d_model = 32, .n_layers = 2, .n_heads = heads, .n_kv_heads = kv_heads, .ffn_hidden = 48,
          .attention = kind, .tie_embeddings = tied};
}

void check_gradients(const ModelConfig& cfg) {
  // T = 70 spans two query tiles of the attention kernel (64 rows each).
  const int B = 2, T = 70;
  Transformer model(cfg, B, T);
  // Larger weights than the training init (std 0.3) so that every component,
  // attention included, moves the loss visibly.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (size_t i = 0; i < model.registry().size(); ++i) {
    const ParamSpec& p = model.registry()[i];
    float* w = model.params()[i].f32();
    for (int64_t j = 0; j < p.numel(); ++j)
      w[j] = p.init == InitKind::Ones ? 1.f + 0.2f * normal(rng)
                                      : (p.shape.size() == 1 ? 0.6f : 0.3f) * normal(rng);  // λ vectors: 0.6
  }
  std::vector<int32_t> tokens(B * T), targets(B * T);
  std::uniform_int_distribution<int> tok(0, int(cfg.vocab_size) - 1);
  for (auto& t : tokens) t = tok(rng);
  for (auto& t : targets) t = tok(rng);

  const float scale = 1.f / float(B * T);
  model.zero_grads();
  model.forward_backward(tokens.data(), targets.data(), scale);
  auto loss = [&] { return model.forward(tokens.data(), targets.data()) * scale; };

  size_t strong = 0;
  for (size_t i = 0; i < model.registry().size(); ++i) {
    const ParamSpec& p = model.registry()[i];
    float* w = model.params()[i].f32();
    const float* g = model.grads()[i].f32();
    const int64_t n = p.numel();
    std::vector<float> u(n), saved(w, w + n);
    double analytic = 0, unorm = 0;
    for (int64_t j = 0; j < n; ++j) {
      u[j] = normal(rng);
      analytic += double(g[j]) * u[j];
      unorm += double(u[j]) * u[j];
    }
    // Each element moves by ~1e-3 against weights of ~0.3: large enough for
    // fp32, small enough that the O(ε²) truncation term stays well below 1%.
    const float eps = 1e-3f;
    for (int64_t j = 0; j < n; ++j) w[j] = saved[j] + eps * u[j];
    const double lp = loss();
    for (int64_t j = 0; j < n; ++j) w[j] = saved[j] - eps * u[j];
    const double lm = loss();
    std::copy(saved.begin(), saved.end(), w);
    const double numeric = (lp - lm) / (2.0 * eps);
    // Tolerance: 2% of the directional derivative (O(ε²) truncation), plus a
    // floor of 2e-4 for the fp32 rounding of the two losses (~2e-7 each) over 2ε.
    const double floor = 2e-4;
    const double tol = 2e-2 * std::abs(analytic) + floor;
    EXPECT_NEAR(analytic, numeric, tol) << p.name << " (|u|=" << std::sqrt(unorm) << ")";
    if (std::abs(analytic) > 10 * floor) ++strong;
  }
  // A few small vectors (a λ of a layer whose λ barely matters) may sit near the
  // floor; the check means something only if nearly every tensor is well above it.
  EXPECT_GE(strong, model.registry().size() * 9 / 10) << "too many gradients near the fp32 floor";
}

TEST(ModelGradients, DiffMhaMatchesFiniteDifferences) {
  check_gradients(tiny_config(AttentionKind::Diff, 2, 2, false));
}
TEST(ModelGradients, DiffGqaTiedMatchesFiniteDifferences) {
  check_gradients(tiny_config(AttentionKind::Diff, 4, 2, true));
}
TEST(ModelGradients, StandardGqaMatchesFiniteDifferences) {
  check_gradients(tiny_config(AttentionKind::Standard, 2, 1, false));
}
TEST(ModelGradients, DiffV2GqaMatchesFiniteDifferences) {
  check_gradients(tiny_config(AttentionKind::DiffV2, 2, 1, false));
}

}  // namespace
}  // namespace dt
