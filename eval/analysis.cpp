#include "eval/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "eval/quantize.hpp"

namespace dt {

using namespace ops;

namespace {

Tensor f32(std::vector<float>& v, std::initializer_list<int64_t> dims) { return cpu_f32(v.data(), dims); }

}  // namespace

AnalysisForward::AnalysisForward(const Transformer& model, AnalysisOptions opt)
    : w_(model.weights()), cfg_(model.config()), opt_(std::move(opt)) {
  const ModelParallel& par = model.parallel();
  if (!model.has_embed() || !model.has_head() || par.place.tp != 1 || par.cp != 1)
    fail("the analysis forward needs the whole model on one process (tp = pp = cp = 1)");
  D_ = cfg_.d_model;
  d_ = cfg_.head_dim();
  nq_ = 2 * cfg_.n_heads;
  nk_ = 2 * cfg_.n_kv_heads;
  const bool diff = cfg_.attention == AttentionKind::Diff;
  nv_ = diff ? cfg_.n_kv_heads : nk_;  // v (P, 2·KV·d) viewed as KV heads of 2d (DIFF) or 2KV heads of d
  dv_ = diff ? 2 * d_ : d_;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    lambda_init_.push_back(float(ModelConfig::lambda_init(l)));
    if (diff) {
      const LayerWeights& L = w_.layers[size_t(l)];
      lambda_.push_back(diff_lambda({L.lq1, L.lk1, L.lq2, L.lk2, lambda_init_.back()}));
    }
  }
  k_.assign(size_t(cfg_.n_layers), std::vector<std::vector<float>>(size_t(nk_)));
  v_.assign(size_t(cfg_.n_layers), std::vector<std::vector<float>>(size_t(nv_)));
}

void AnalysisForward::reset() {
  pos_ = n_last_ = 0;
  for (auto& layer : k_)
    for (auto& s : layer) s.clear();
  for (auto& layer : v_)
    for (auto& s : layer) s.clear();
}

void AnalysisForward::clear_captures() {
  rows_.clear();
  logit_stats_.clear();
  hidden_stats_.clear();
  hidden_.clear();
}

void AnalysisForward::forward(std::span<const int32_t> tokens) {
  const int64_t n = int64_t(tokens.size()), D = D_;
  DT_CHECK(n > 0);
  if (opt_.logit_bits != 0 && (opt_.logit_bits < 2 || opt_.logit_bits > 24))
    fail("logit quantization to ", opt_.logit_bits, " bits: expected 2..24 (or 0 for none)");
  const int L = cfg_.n_layers;
  if (opt_.logit_stats && logit_stats_.empty()) logit_stats_.resize(size_t(L));
  if (opt_.hidden_stats && hidden_stats_.empty()) hidden_stats_.resize(size_t(L));
  if (opt_.keep_hidden) hidden_.assign(size_t(L), {});

  tok_.assign(tokens.begin(), tokens.end());
  x_.resize(size_t(n * D));
  embedding_forward_shard(f32(x_, {n, D}), cpu_i32(tok_.data(), {n}), w_.embed, 0, cfg_.vocab_size);
  rope_.resize(size_t(n * d_));
  rope_table(f32(rope_, {n, d_}), cfg_.rope_theta, pos_);

  const int64_t F = cfg_.ffn_hidden;
  const float eps = float(cfg_.norm_eps);
  for (int l = 0; l < L; ++l) {
    attention_layer(l, n);  // x += Attn(RMSNorm(x))
    // x += W2 (silu(W1 h) * (W3 h)),  h = RMSNorm(x)
    const LayerWeights& W = w_.layers[size_t(l)];
    ln_.resize(size_t(n * D)), rstd_.resize(size_t(n));
    h1_.resize(size_t(n * F)), h3_.resize(size_t(n * F)), act_.resize(size_t(n * F));
    rmsnorm_forward(f32(ln_, {n, D}), f32(rstd_, {n}), f32(x_, {n, D}), W.mlp_norm, eps);
    linear_forward(f32(h1_, {n, F}), f32(ln_, {n, D}), W.w1);
    linear_forward(f32(h3_, {n, F}), f32(ln_, {n, D}), W.w3);
    swiglu_forward(f32(act_, {n, F}), f32(h1_, {n, F}), f32(h3_, {n, F}));
    matmul(f32(x_, {n, D}), f32(act_, {n, F}), false, W.w2, true, 1.f, 1.f);

    if (opt_.hidden_stats) hidden_stats_[size_t(l)].add(x_.data(), n * D);
    if (opt_.keep_hidden) hidden_[size_t(l)] = x_;
  }
  lnf_.resize(size_t(n * D));
  rmsnorm_forward(f32(lnf_, {n, D}), f32(rstd_, {n}), f32(x_, {n, D}), w_.final_norm, eps);
  pos_ += n;
  n_last_ = n;
}

void AnalysisForward::attention_layer(int l, int64_t n) {
  const LayerWeights& W = w_.layers[size_t(l)];
  const int64_t D = D_, d = d_, P = pos_ + n;
  const bool diff = cfg_.attention == AttentionKind::Diff;
  ln_.resize(size_t(n * D)), rstd_.resize(size_t(n));
  q_.resize(size_t(n * nq_ * d)), kn_.resize(size_t(n * nk_ * d)), vn_.resize(size_t(n * nv_ * dv_));
  rmsnorm_forward(f32(ln_, {n, D}), f32(rstd_, {n}), f32(x_, {n, D}), W.attn_norm, float(cfg_.norm_eps));
  linear_forward(f32(q_, {n, nq_ * d}), f32(ln_, {n, D}), W.wq);
  linear_forward(f32(kn_, {n, nk_ * d}), f32(ln_, {n, D}), W.wk);
  linear_forward(f32(vn_, {n, nv_ * dv_}), f32(ln_, {n, D}), W.wv);
  rope_forward(f32(q_, {1, n, nq_, d}), f32(rope_, {n, d}));
  rope_forward(f32(kn_, {1, n, nk_, d}), f32(rope_, {n, d}));

  // Append this call's keys and values to the cache, one contiguous (P, ·) block per head.
  for (int64_t s = 0; s < nk_; ++s)
    for (int64_t i = 0; i < n; ++i) {
      const float* src = &kn_[size_t((i * nk_ + s) * d)];
      k_[size_t(l)][size_t(s)].insert(k_[size_t(l)][size_t(s)].end(), src, src + d);
    }
  for (int64_t g = 0; g < nv_; ++g)
    for (int64_t i = 0; i < n; ++i) {
      const float* src = &vn_[size_t((i * nv_ + g) * dv_)];
      v_[size_t(l)][size_t(g)].insert(v_[size_t(l)][size_t(g)].end(), src, src + dv_);
    }

  // out (n, heads, dv): per head, A · V_g written into its columns. Query rows
  // go in blocks of nb so that a block's scores (nb, ≤ P) fit max_score_floats
  // at any context length.
  const int64_t heads = diff ? cfg_.n_heads : nq_, group = cfg_.n_heads / cfg_.n_kv_heads;
  const int maps = diff ? 2 : 1;
  const int64_t nb = std::clamp<int64_t>(opt_.max_score_floats / P, 1, n);
  for (int m = 0; m < maps; ++m) o_[m].resize(size_t(n * heads * dv_)), A_[m].resize(size_t(nb * P));
  std::vector<float> oh(static_cast<size_t>(nb * dv_));
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;  // DIFF: kv head of differential head h; standard: of head h
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
      const int64_t rows = std::min(nb, n - i0), keys = pos_ + i0 + rows;  // later keys are all masked
      for (int m = 0; m < maps; ++m) {
        // DIFF map m of head h: query sub-head 2h+m, key sub-head 2g+m; standard: head h, kv head g.
        attention_map(l, int(diff ? 2 * h + m : h), int(diff ? 2 * g + m : g), i0, rows, A_[m].data());
        matmul(f32(oh, {rows, dv_}), cpu_f32(A_[m].data(), {rows, keys}), false,
               cpu_f32(v_[size_t(l)][size_t(g)].data(), {keys, dv_}), false);
        for (int64_t i = 0; i < rows; ++i)
          std::memcpy(&o_[m][size_t(((i0 + i) * heads + h) * dv_)], &oh[size_t(i * dv_)], size_t(dv_) * sizeof(float));
      }
      for (int64_t row : opt_.capture_rows) {
        if (row < pos_ + i0 || row >= keys) continue;
        AttentionRow r{l, int(h), row, {}, {}};
        for (int m = 0; m < maps; ++m) {
          const float* a = &A_[m][size_t((row - pos_ - i0) * keys)];
          (m ? r.a2 : r.a1).assign(a, a + row + 1);
        }
        rows_.push_back(std::move(r));
      }
    }
  }

  att_.resize(size_t(n * D));
  if (diff) {
    // out = RMSNorm(o1 − λ·o2; g_sub) · (1 − λ_init), per (token, head)
    comb_rstd_.resize(size_t(n * heads));
    diff_combine_forward(f32(att_, {1, n, heads, dv_}), f32(comb_rstd_, {1, n, heads}),
                         f32(o_[0], {1, n, heads, dv_}), f32(o_[1], {1, n, heads, dv_}),
                         {W.lq1, W.lk1, W.lq2, W.lk2, lambda_init_[size_t(l)]}, W.subln, float(cfg_.norm_eps));
  } else {
    att_ = o_[0];
  }
  matmul(f32(x_, {n, D}), f32(att_, {n, D}), false, W.wo, true, 1.f, 1.f);  // x += att · Woᵀ
}

void AnalysisForward::attention_map(int l, int qs, int ks, int64_t i0, int64_t rows, float* A) {
  const int64_t d = d_, keys = pos_ + i0 + rows;
  qh_.resize(size_t(rows * d));
  for (int64_t i = 0; i < rows; ++i)
    std::memcpy(&qh_[size_t(i * d)], &q_[size_t(((i0 + i) * nq_ + qs) * d)], size_t(d) * sizeof(float));
  // S (rows, keys) = q_s · k_sᵀ / √d; query i0 + i sits at position pos_ + i0 + i and sees keys up to it.
  matmul(cpu_f32(A, {rows, keys}), f32(qh_, {rows, d}), false, cpu_f32(k_[size_t(l)][size_t(ks)].data(), {keys, d}),
         true, float(1.0 / std::sqrt(double(d))));
  const int64_t first = pos_ + i0 + 1;  // causal entries of row i: first + i
  if (opt_.logit_stats)
    for (int64_t i = 0; i < rows; ++i) logit_stats_[size_t(l)].add(A + i * keys, first + i);
  const int bits = opt_.logit_bits;
#pragma omp parallel for schedule(static) if (rows * keys >= 65536)  // small blocks (decoding) stay serial
  for (int64_t i = 0; i < rows; ++i) {
    float* s = A + i * keys;
    const int64_t valid = first + i;
    if (bits) quantize_absmax(s, valid, bits);
    float mx = -INFINITY;
    for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, s[j]);
    float sum = 0.f;
    for (int64_t j = 0; j < valid; ++j) sum += (s[j] = std::exp(s[j] - mx));
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < valid; ++j) s[j] *= inv;
    std::fill(s + valid, s + keys, 0.f);  // the causal mask
  }
}

void AnalysisForward::logits(float* out, int64_t r0, int64_t rows) const {
  DT_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= n_last_, "logit rows ", r0, "+", rows, " of ", n_last_);
  // The ops take non-const views; lnf_ is only read.
  float* h = const_cast<float*>(lnf_.data()) + r0 * D_;
  linear_forward(cpu_f32(out, {rows, cfg_.vocab_size}), cpu_f32(h, {rows, D_}), w_.lm_head);
}

std::vector<float> AnalysisForward::last_logits() const {
  std::vector<float> z(static_cast<size_t>(cfg_.vocab_size));
  logits(z.data(), n_last_ - 1, 1);
  return z;
}

double AnalysisForward::loss_sum(std::span<const int32_t> window) {
  DT_CHECK(window.size() >= 2);
  const int64_t n = int64_t(window.size()) - 1, V = cfg_.vocab_size;
  reset();
  forward(window.first(size_t(n)));
  // Cross-entropy in blocks of rows, so the (n, V) logits never exist at once.
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t(1) << 22) / V));
  std::vector<float> z(static_cast<size_t>(block * V)), losses(static_cast<size_t>(block));
  std::vector<int32_t> targets(window.begin() + 1, window.end());
  double total = 0;
  for (int64_t r0 = 0; r0 < n; r0 += block) {
    const int64_t rows = std::min(block, n - r0);
    logits(z.data(), r0, rows);
    total += cross_entropy(cpu_f32(z.data(), {rows, V}), cpu_i32(targets.data() + r0, {rows}),
                           cpu_f32(losses.data(), {rows}), 0.f);
  }
  return total;
}

}  // namespace dt
