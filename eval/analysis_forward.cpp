#include "eval/analysis_forward.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "eval/absmax_quantize.hpp"

namespace dt {

using namespace ops;

AnalysisForward::AnalysisForward(const Transformer& model, AnalysisOptions opt)
    : w_(model.weights()), cfg_(model.config()), opt_(std::move(opt)) {
  const ModelParallel& par = model.parallel();
  if (!model.has_embed() || !model.has_head() || par.place.tp != 1 || par.cp != 1)
    fail("the analysis forward needs the whole model on one process (tp = pp = cp = 1)");
  if (cfg_.attention == AttentionKind::Diff)
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const LayerWeights& L = w_.layers[size_t(l)];
      lambda_.push_back(diff_lambda({L.lq1, L.lk1, L.lq2, L.lk2, float(ModelConfig::lambda_init(l))}));
    }
}

void AnalysisForward::reset() { pos_ = n_last_ = 0; }

void AnalysisForward::clear_captures() {
  rows_.clear();
  logit_stats_.clear();
  hidden_stats_.clear();
  hidden_.clear();
}

void AnalysisForward::reserve(int64_t n) {
  if (pos_ + n > cache_.capacity) {
    // Grow by doubling (decoding appends one position at a time), keeping rows [0, pos_).
    Arena a(Device::cpu());
    KvCache grown;
    a.begin_measure();
    grown.alloc(a, cfg_, std::max(2 * cache_.capacity, pos_ + n));
    a.commit();
    grown.alloc(a, cfg_, std::max(2 * cache_.capacity, pos_ + n));
    for (size_t l = 0; l < grown.k.size() && pos_ > 0; ++l) {
      copy(grown.k[l].slice0(0, pos_), cache_.k[l].slice0(0, pos_));
      copy(grown.v[l].slice0(0, pos_), cache_.v[l].slice0(0, pos_));
    }
    cache_arena_ = std::move(a);
    cache_ = std::move(grown);
  }
  if (n > buf_.rows) {
    auto build = [&](Arena& a) {
      buf_.alloc(a, cfg_, n);
      lnf_ = a.alloc_f32({n, cfg_.d_model});
      rstdf_ = a.alloc_f32({n});
    };
    buf_arena_ = Arena(Device::cpu());
    buf_arena_.begin_measure();
    build(buf_arena_);
    buf_arena_.commit();
    build(buf_arena_);
  }
}

void AnalysisForward::forward(std::span<const int32_t> tokens) {
  const int64_t n = int64_t(tokens.size()), D = cfg_.d_model;
  DT_CHECK(n > 0);
  if (opt_.logit_bits != 0 && (opt_.logit_bits < 2 || opt_.logit_bits > 24))
    fail("logit quantization to ", opt_.logit_bits, " bits: expected 2..24 (or 0 for none)");
  const int L = cfg_.n_layers;
  if (opt_.logit_stats && logit_stats_.empty()) logit_stats_.resize(size_t(L));
  if (opt_.hidden_stats && hidden_stats_.empty()) hidden_stats_.resize(size_t(L));
  if (opt_.keep_hidden) hidden_.assign(size_t(L), {});
  reserve(n);
  buf_.forward(w_, cfg_, cache_, tokens.data(), pos_, n, this, [&](int l, Tensor x) {
    if (opt_.hidden_stats) hidden_stats_[size_t(l)].add(x.f32(), n * D);
    if (opt_.keep_hidden) hidden_[size_t(l)].assign(x.f32(), x.f32() + n * D);
  });
  rmsnorm_forward(lnf_.slice0(0, n), rstdf_.slice0(0, n), buf_.x.slice0(0, n), w_.final_norm, float(cfg_.norm_eps));
  pos_ += n;
  n_last_ = n;
}

void AnalysisForward::on_logits(int layer, int64_t, int, int64_t p0, float* S, int64_t rows, int64_t keys) {
  // Row i (position p0 + i) has p0 + i + 1 causal entries; statistics before quantization.
  if (opt_.logit_stats)
    for (int64_t i = 0; i < rows; ++i) logit_stats_[size_t(layer)].add(S + i * keys, p0 + i + 1);
  const int bits = opt_.logit_bits;
  if (!bits) return;
#pragma omp parallel for schedule(static) if (rows * keys >= 65536)  // small blocks (decoding) stay serial
  for (int64_t i = 0; i < rows; ++i) quantize_absmax(S + i * keys, p0 + i + 1, bits);
}

void AnalysisForward::on_v2_gates(int, int64_t p0, const float* lam, int64_t rows, int64_t out_heads) {
  gates_.assign(opt_.capture_rows.size() * size_t(out_heads), 0.f);
  for (size_t i = 0; i < opt_.capture_rows.size(); ++i) {
    const int64_t row = opt_.capture_rows[i];
    if (row < p0 || row >= p0 + rows) continue;
    for (int64_t h = 0; h < out_heads; ++h)
      gates_[i * size_t(out_heads) + size_t(h)] = 1.f / (1.f + std::exp(-lam[(row - p0) * out_heads + h]));
  }
}

void AnalysisForward::on_probs(int layer, int64_t head, int map, int64_t p0, const float* A, int64_t rows,
                               int64_t keys) {
  if (cfg_.attention == AttentionKind::DiffV2) {
    // Query head 2h adds output head h's rows (a1); 2h+1 fills their a2, found by row.
    const int64_t h = head / 2, out_heads = cfg_.n_heads;
    for (size_t i = 0; i < opt_.capture_rows.size(); ++i) {
      const int64_t row = opt_.capture_rows[i];
      if (row < p0 || row >= p0 + rows) continue;
      const float* a = A + (row - p0) * keys;
      if (head % 2 == 0) {
        rows_.push_back({layer, int(h), row, std::vector<float>(a, a + row + 1), {},
                         gates_[i * size_t(out_heads) + size_t(h)]});
        continue;
      }
      for (auto r = rows_.rbegin(); r != rows_.rend(); ++r)
        if (r->layer == layer && r->head == h && r->row == row && r->a2.empty()) {
          r->a2.assign(a, a + row + 1);
          break;
        }
    }
    return;
  }
  // Map 0 adds one AttentionRow per captured row in this block; map 1 (DIFF)
  // fills their a2 in the same order.
  if (map == 0) first_capture_ = rows_.size();
  size_t next = first_capture_;
  const float lam = lambda_.empty() ? 0.f : lambda_[size_t(layer)];
  for (int64_t row : opt_.capture_rows) {
    if (row < p0 || row >= p0 + rows) continue;
    const float* a = A + (row - p0) * keys;
    if (map == 0) rows_.push_back({layer, int(head), row, std::vector<float>(a, a + row + 1), {}, lam});
    else rows_[next++].a2.assign(a, a + row + 1);
  }
}

void AnalysisForward::logits(float* out, int64_t r0, int64_t rows) const {
  DT_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= n_last_, "logit rows ", r0, "+", rows, " of ", n_last_);
  linear_forward(cpu_f32(out, {rows, cfg_.vocab_size}), lnf_.slice0(r0, r0 + rows), w_.lm_head);
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
