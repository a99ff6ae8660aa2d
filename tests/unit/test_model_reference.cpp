// The whole model against the golden files: logits, loss, λ and every
// parameter gradient computed in float64 by an independent implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model/transformer.hpp"
#include "tests/unit/reference_file.hpp"

namespace dt {
namespace {

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Largest |ours − ref| relative to the largest |ref| of the tensor.
double rel_err(const float* ours, const std::vector<double>& ref) {
  double err = 0;
  for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::abs(double(ours[i]) - ref[i]));
  return err / std::max(max_abs(ref), 1e-30);
}

void check_against_reference(const std::string& file) {
  testing::ReferenceFile ref(std::string(DT_TEST_DATA) + "/" + file);
  const ModelConfig cfg = ref.config();
  std::vector<hsize_t> tdims;
  const std::vector<int64_t> tok = ref.read_int("tokens", &tdims);
  const int B = int(tdims[0]), T = int(tdims[1]) - 1;
  std::vector<int32_t> inputs, targets;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      inputs.push_back(int32_t(tok[b * (T + 1) + t]));
      targets.push_back(int32_t(tok[b * (T + 1) + t + 1]));
    }

  Transformer model(cfg, B, T);
  for (const ParamSpec& p : model.registry()) {
    const std::vector<double> w = ref.read("params/" + p.name);
    ASSERT_EQ(int64_t(w.size()), p.numel()) << p.name;
    float* dst = model.param(p.name).f32();
    for (size_t i = 0; i < w.size(); ++i) dst[i] = float(w[i]);
  }
  // A reference that has a tensor our registry lacks (or the reverse) is a spec mismatch.
  EXPECT_EQ(ref.has("params/lm_head.weight"), !cfg.tie_embeddings);

  // Forward: fp32 against float64 over O(D + T) accumulations of O(1) values;
  // 1e-5 of the largest logit is a few fp32 ulps of headroom per layer.
  const double loss_sum = model.forward(inputs.data(), targets.data());
  const double loss = loss_sum / double(B * T);
  const double ref_loss = ref.read("loss")[0];
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss)) << file;
  EXPECT_LT(rel_err(model.logits().f32(), ref.read("logits")), 1e-5) << file << " logits";
  if (cfg.attention == AttentionKind::Diff) {
    const std::vector<double> lam = ref.read("lambda"), lam_init = ref.read("lambda_init");
    for (int l = 0; l < cfg.n_layers; ++l) {
      EXPECT_NEAR(model.lambda(l), lam[l], 1e-5 * std::max(1.0, std::abs(lam[l]))) << "layer " << l;
      EXPECT_NEAR(ModelConfig::lambda_init(l), lam_init[l], 1e-12) << "layer " << l;
    }
  }

  // Backward: gradients of the mean loss. They pass through every layer's
  // backward and sums over B·T positions, so fp32 rounding grows more than in
  // the forward: 1e-4 of each tensor's largest gradient (as the reference README advises).
  model.zero_grads();
  model.forward_backward(inputs.data(), targets.data(), 1.f / float(B * T));
  for (const ParamSpec& p : model.registry()) {
    const std::vector<double> g = ref.read("grads/" + p.name);
    ASSERT_GT(max_abs(g), 0.0) << p.name << ": reference gradient is zero, test would be vacuous";
    EXPECT_LT(rel_err(model.grad(p.name).f32(), g), 1e-4) << file << " grad " << p.name;
  }
}

TEST(ModelMatchesReference, DiffMha) { check_against_reference("diff_mha.h5"); }
TEST(ModelMatchesReference, DiffGqa) { check_against_reference("diff_gqa.h5"); }
TEST(ModelMatchesReference, DiffTiedEmbeddingsTheta640k) { check_against_reference("diff_tied_theta.h5"); }
TEST(ModelMatchesReference, StandardGqa) { check_against_reference("standard_gqa.h5"); }
TEST(ModelMatchesReference, DiffV2Gqa) { check_against_reference("diff_v2_gqa.h5"); }
TEST(ModelMatchesReference, DiffV2MhaTheta640k) { check_against_reference("diff_v2_mha.h5"); }

}  // namespace
}  // namespace dt
