// `difftron export --format hf` computes, under transformers' semantics, the
// function difftron computes. The reference below is a float64 forward of
// DiffLlamaForCausalLM and LlamaForCausalLM written step by step from the
// eager attention of transformers (modeling_diffllama.py / modeling_llama.py):
// HF head order, repeat_kv, DiffLlama's value built by chunking the repeated
// V heads into halves and concatenating them, rotate_half RoPE with
// inv_freq[m] = θ^(−2m/d), softmax, λ = exp(Σλq1λk1) − exp(Σλq2λk2) + λ_init
// with λ_init from the 0-based layer index, a weightless RMSNorm over 2d
// (groupnorm) times (1 − λ_init), RMSNorm x·rsqrt(mean(x²)+ε)·w, SwiGLU
// down(silu(gate)·up), a tied lm_head reading embed_tokens. It reads only the
// exported directory; nothing of difftron's mapping is used.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/hf_test_util.hpp"
#include "checkpoint/hf_export.hpp"

namespace dt {
namespace {

using namespace dt_test;
using Mat = std::vector<std::vector<double>>;  // [rows][cols]

struct HfRef {
  HfDir d;
  int64_t D, N, M, hd, V, L;
  double eps, theta;
  bool diff, tied;

  explicit HfRef(const std::string& dir) : d(read_hf_dir(dir)) {
    const Json& c = d.config;
    D = c["hidden_size"], N = c["num_attention_heads"], M = c["num_key_value_heads"], hd = c["head_dim"];
    V = c["vocab_size"], L = c["num_hidden_layers"];
    eps = c["rms_norm_eps"], theta = c["rope_theta"];
    diff = c["model_type"] == "diffllama";
    tied = c["tie_word_embeddings"];
  }
  const std::vector<double>& w(const std::string& name) const { return d.t.at(name).v; }

  // x [T][in] times W^T, W [out, in] row-major.
  Mat linear(const Mat& x, const std::string& name) const {
    const std::vector<double>& W = w(name);
    const size_t in = x[0].size(), out = W.size() / in;
    Mat y(x.size(), std::vector<double>(out, 0.0));
    for (size_t t = 0; t < x.size(); ++t)
      for (size_t o = 0; o < out; ++o)
        for (size_t i = 0; i < in; ++i) y[t][o] += x[t][i] * W[o * in + i];
    return y;
  }
  static std::vector<double> rms(const std::vector<double>& x, const std::vector<double>* g, double eps) {
    double ms = 0;
    for (double v : x) ms += v * v;
    const double r = 1.0 / std::sqrt(ms / double(x.size()) + eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * (g ? (*g)[i] : 1.0);
    return y;
  }
  Mat rms_rows(const Mat& x, const std::string& name) const {
    Mat y;
    for (const auto& row : x) y.push_back(rms(row, &w(name), eps));
    return y;
  }
  // Head h of a [T][heads·hd] activation: [T][hd].
  Mat head(const Mat& x, int64_t h) const {
    Mat y;
    for (const auto& row : x) y.emplace_back(row.begin() + h * hd, row.begin() + (h + 1) * hd);
    return y;
  }
  // q·cos + rotate_half(q)·sin, rotate_half(q) = cat(−q[d/2:], q[:d/2]); cos/sin = cat(freqs, freqs).
  void rope(Mat& x) const {
    for (size_t t = 0; t < x.size(); ++t) {
      const std::vector<double> q = x[t];
      for (int64_t i = 0; i < hd; ++i) {
        const int64_t m = i % (hd / 2);
        const double a = double(t) / std::pow(theta, double(2 * m) / double(hd));
        const double rot = i < hd / 2 ? -q[size_t(i + hd / 2)] : q[size_t(i - hd / 2)];
        x[t][size_t(i)] = q[size_t(i)] * std::cos(a) + rot * std::sin(a);
      }
    }
  }
  // softmax(q kᵀ/√hd + causal mask) · v.
  static Mat attend(const Mat& q, const Mat& k, const Mat& v) {
    Mat o(q.size(), std::vector<double>(v[0].size(), 0.0));
    for (size_t t = 0; t < q.size(); ++t) {
      std::vector<double> s(t + 1);
      double mx = -1e300, sum = 0;
      for (size_t j = 0; j <= t; ++j) {
        for (size_t i = 0; i < q[t].size(); ++i) s[j] += q[t][i] * k[j][i];
        s[j] /= std::sqrt(double(q[t].size()));
        mx = std::max(mx, s[j]);
      }
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (size_t j = 0; j <= t; ++j)
        for (size_t i = 0; i < v[j].size(); ++i) o[t][i] += s[j] / sum * v[j][i];
    }
    return o;
  }

  Mat attention(const Mat& h, int64_t l) const {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    const Mat Q = linear(h, p + "q_proj.weight"), K = linear(h, p + "k_proj.weight"), Vv = linear(h, p + "v_proj.weight");
    std::vector<Mat> q, k, v;
    for (int64_t i = 0; i < N; ++i) q.push_back(head(Q, i)), rope(q.back());
    for (int64_t g = 0; g < M; ++g) k.push_back(head(K, g)), rope(k.back()), v.push_back(head(Vv, g));
    const int64_t rep = N / M;  // repeat_kv: query head i reads kv head i / rep
    Mat out(h.size());
    if (!diff) {
      for (int64_t i = 0; i < N; ++i) {
        const Mat o = attend(q[size_t(i)], k[size_t(i / rep)], v[size_t(i / rep)]);
        for (size_t t = 0; t < h.size(); ++t) out[t].insert(out[t].end(), o[t].begin(), o[t].end());
      }
      return linear(out, p + "o_proj.weight");
    }
    // value_states = cat(chunk(repeat_kv(v), 2, heads), dim=-1), then .repeat(1, 2, 1, 1).
    std::vector<Mat> value(size_t(N / 2));
    for (int64_t j = 0; j < N / 2; ++j)
      for (size_t t = 0; t < h.size(); ++t) {
        std::vector<double> row = v[size_t(j / rep)][t];
        const std::vector<double>& second = v[size_t((j + N / 2) / rep)][t];
        row.insert(row.end(), second.begin(), second.end());
        value[size_t(j)].push_back(row);
      }
    std::vector<Mat> o;
    for (int64_t i = 0; i < N; ++i) o.push_back(attend(q[size_t(i)], k[size_t(i / rep)], value[size_t(i % (N / 2))]));
    double dot1 = 0, dot2 = 0;
    for (int64_t i = 0; i < hd; ++i) {
      dot1 += w(p + "lambda_q1")[size_t(i)] * w(p + "lambda_k1")[size_t(i)];
      dot2 += w(p + "lambda_q2")[size_t(i)] * w(p + "lambda_k2")[size_t(i)];
    }
    const double init = 0.8 - 0.6 * std::exp(-0.3 * double(l));
    const double lambda = std::exp(dot1) - std::exp(dot2) + init;
    for (int64_t hh = 0; hh < N / 2; ++hh)  // attn_output1 − λ·attn_output2, chunked by heads
      for (size_t t = 0; t < h.size(); ++t) {
        std::vector<double> x(size_t(2 * hd));
        for (size_t i = 0; i < x.size(); ++i) x[i] = o[size_t(hh)][t][i] - lambda * o[size_t(hh + N / 2)][t][i];
        for (double e : rms(x, nullptr, eps)) out[t].push_back((1 - init) * e);
      }
    return linear(out, p + "o_proj.weight");
  }

  Mat logits(const std::vector<int32_t>& tokens) const {
    Mat x;
    const std::vector<double>& E = w("model.embed_tokens.weight");
    for (int32_t t : tokens) x.emplace_back(E.begin() + t * D, E.begin() + (t + 1) * D);
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const Mat a = attention(rms_rows(x, p + "input_layernorm.weight"), l);
      for (size_t t = 0; t < x.size(); ++t)
        for (int64_t i = 0; i < D; ++i) x[t][size_t(i)] += a[t][size_t(i)];
      const Mat h = rms_rows(x, p + "post_attention_layernorm.weight");
      Mat g = linear(h, p + "mlp.gate_proj.weight");
      const Mat u = linear(h, p + "mlp.up_proj.weight");
      for (size_t t = 0; t < g.size(); ++t)
        for (size_t i = 0; i < g[t].size(); ++i) g[t][i] = g[t][i] / (1 + std::exp(-g[t][i])) * u[t][i];
      const Mat m = linear(g, p + "mlp.down_proj.weight");
      for (size_t t = 0; t < x.size(); ++t)
        for (int64_t i = 0; i < D; ++i) x[t][size_t(i)] += m[t][size_t(i)];
    }
    return linear(rms_rows(x, "model.norm.weight"), tied ? "model.embed_tokens.weight" : "lm_head.weight");
  }
};

// fp32 export, compared on 12 tokens. difftron's CPU forward runs in fp32
// (each GEMM, norm and softmax ~1e-7 relative, compounded over 2 layers and
// attention sums: observed ~1e-6 of the logit scale); 1e-4 of the scale
// leaves that a wide margin, while a wrong q/k/v row order or RoPE pairing
// moves the logits by 1e-1 of their scale or more with these sharp maps.
void expect_hf_forward_matches(const std::string& model, const std::string& shard_size, const std::string& type) {
  ScratchDir dir;
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  HfExportOptions opt;
  if (!shard_size.empty()) opt.max_shard_bytes = parse_byte_size(shard_size);
  export_hf(ck, dir.file("hf"), opt);
  const HfRef ref(dir.file("hf"));
  EXPECT_EQ(ref.d.config["model_type"], type);
  const std::vector<int32_t> tokens = {84, 104, 101, 32, 113, 117, 105, 99, 107, 256, 7, 200};
  const Mat want = ref.logits(tokens);
  const std::vector<float> got = difftron_logits(ck, tokens);
  std::vector<double> flat;
  for (const auto& row : want) flat.insert(flat.end(), row.begin(), row.end());
  const double err = rel_err(got, flat);
  EXPECT_LE(err, 1e-4) << "difftron vs the transformers forward of the export";
  std::printf("max |difftron − HF reference| / max |logit| = %.3g\n", err);
}

TEST(HfExportMatchesTransformersForward, DiffLlamaMhaUntied) {
  expect_hf_forward_matches("n_heads: 2, n_kv_heads: 2, attention: diff", "", "diffllama");
}

// GQA (2 heads share 1 kv head) with tied embeddings, read from a sharded export.
TEST(HfExportMatchesTransformersForward, DiffLlamaGqaTiedSharded) {
  expect_hf_forward_matches("n_heads: 2, n_kv_heads: 1, attention: diff, tie_embeddings: true", "20KB", "diffllama");
}

TEST(HfExportMatchesTransformersForward, LlamaGqa) {
  expect_hf_forward_matches("n_heads: 2, n_kv_heads: 1, attention: standard", "", "llama");
}

}  // namespace
}  // namespace dt
