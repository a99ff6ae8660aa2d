#include "model/transformer.hpp"

#include <cmath>
#include <cstring>

#include "core/rng.hpp"

namespace dt {

static Tensor alloc_shape(Arena& a, const std::vector<int64_t>& s) {
  switch (s.size()) {
    case 1: return a.alloc_f32({s[0]});
    case 2: return a.alloc_f32({s[0], s[1]});
    default: fail("parameter with ", s.size(), " dimensions");
  }
}

Transformer::Transformer(const ModelConfig& cfg, int micro_batch, int seq_len, Device dev)
    : cfg_(cfg), B_(micro_batch), T_(seq_len), registry_(param_registry(cfg)),
      param_arena_(dev), grad_arena_(dev), act_arena_(dev) {
  for (Arena* a : {&param_arena_, &grad_arena_}) {
    auto& views = (a == &param_arena_) ? params_ : grads_;
    auto& w = (a == &param_arena_) ? w_ : g_;
    a->begin_measure();
    build_params(*a, views, w);
    a->commit();
    build_params(*a, views, w);
  }
  act_arena_.begin_measure();
  build_acts(act_arena_);
  act_arena_.commit();
  build_acts(act_arena_);
  ops::rope_table(rope_, cfg_.rope_theta, 0);
}

// Walks the registry in order; the same walk over the gradient arena gives
// gradients at the same offsets as their parameters.
void Transformer::build_params(Arena& a, std::vector<Tensor>& views, Weights& w) {
  views.clear();
  for (const ParamSpec& p : registry_) views.push_back(alloc_shape(a, p.shape));
  w.layers.assign(cfg_.n_layers, {});
  size_t i = 0;
  w.embed = views[i++];
  for (int l = 0; l < cfg_.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    L.attn_norm = views[i++];
    L.wq = views[i++];
    L.wk = views[i++];
    L.wv = views[i++];
    L.wo = views[i++];
    if (cfg_.attention == AttentionKind::Diff) {
      L.lq1 = views[i++];
      L.lk1 = views[i++];
      L.lq2 = views[i++];
      L.lk2 = views[i++];
      L.subln = views[i++];
    }
    L.mlp_norm = views[i++];
    L.w1 = views[i++];
    L.w2 = views[i++];
    L.w3 = views[i++];
  }
  w.final_norm = views[i++];
  w.lm_head = cfg_.tie_embeddings ? w.embed : views[i++];
  DT_CHECK(i == views.size(), "registry and model layout disagree");
}

void Transformer::build_acts(Arena& a) {
  const int64_t B = B_, T = T_, N = B * T, D = cfg_.d_model, F = cfg_.ffn_hidden, V = cfg_.vocab_size;
  const int64_t H = cfg_.n_heads, KV = cfg_.n_kv_heads, d = cfg_.head_dim();
  const bool diff = cfg_.attention == AttentionKind::Diff;
  acts_.assign(cfg_.n_layers, {});
  for (LayerActs& L : acts_) {
    L.x = a.alloc_f32({N, D});
    L.ln1 = a.alloc_f32({N, D});
    L.rstd1 = a.alloc_f32({N});
    L.q = a.alloc_f32({B, T, 2 * H, d});
    L.k = a.alloc_f32({B, T, 2 * KV, d});
    L.v = a.alloc_f32({N, 2 * KV * d});
    L.att = a.alloc_f32({N, D});
    if (diff) {
      L.diff.o1 = a.alloc_f32({B, T, H, 2 * d});
      L.diff.o2 = a.alloc_f32({B, T, H, 2 * d});
      L.diff.lse1 = a.alloc_f32({B, H, T});
      L.diff.lse2 = a.alloc_f32({B, H, T});
      L.diff.rstd = a.alloc_f32({B, T, H});
    } else {
      L.lse = a.alloc_f32({B, 2 * H, T});
    }
    L.xm = a.alloc_f32({N, D});
    L.ln2 = a.alloc_f32({N, D});
    L.rstd2 = a.alloc_f32({N});
    L.h1 = a.alloc_f32({N, F});
    L.h3 = a.alloc_f32({N, F});
    L.act = a.alloc_f32({N, F});
  }
  x_final_ = a.alloc_f32({N, D});
  lnf_ = a.alloc_f32({N, D});
  rstdf_ = a.alloc_f32({N});
  logits_ = a.alloc_f32({N, V});
  losses_ = a.alloc_f32({N});
  tokens_ = a.alloc(DType::I32, {N});
  targets_ = a.alloc(DType::I32, {N});
  rope_ = a.alloc_f32({T, d});
  dx_ = a.alloc_f32({N, D});
  dln_ = a.alloc_f32({N, D});
  dtmp_ = a.alloc_f32({N, D});
  dact_ = a.alloc_f32({N, F});
  dh1_ = a.alloc_f32({N, F});
  dh3_ = a.alloc_f32({N, F});
  dq_ = a.alloc_f32({B, T, 2 * H, d});
  dk_ = a.alloc_f32({B, T, 2 * KV, d});
  dv_ = a.alloc_f32({N, 2 * KV * d});
}

void Transformer::init_weights(uint64_t seed) {
  for (size_t i = 0; i < registry_.size(); ++i) {
    const ParamSpec& p = registry_[i];
    float* x = params_[i].f32();
    const int64_t n = p.numel();
    if (p.init == InitKind::Ones) {
      for (int64_t j = 0; j < n; ++j) x[j] = 1.f;
      continue;
    }
    const uint64_t stream = hash_name(p.name);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; ++j) x[j] = float(p.init_std * normal_at(seed, stream, uint64_t(j)));
  }
}

static size_t find_param(const std::vector<ParamSpec>& r, const std::string& name) {
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i].name == name) return i;
  fail("no parameter named '", name, "' in this model");
}

Tensor Transformer::param(const std::string& name) const { return params_[find_param(registry_, name)]; }
Tensor Transformer::grad(const std::string& name) const { return grads_[find_param(registry_, name)]; }

float Transformer::lambda(int layer) const {
  const LayerWeights& L = w_.layers.at(layer);
  DT_CHECK(cfg_.attention == AttentionKind::Diff, "λ exists only for diff attention");
  return ops::diff_lambda({L.lq1, L.lk1, L.lq2, L.lk2, float(ModelConfig::lambda_init(layer))});
}

}  // namespace dt
