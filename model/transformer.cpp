#include "model/transformer.hpp"

#include <cmath>
#include <cstring>

#include "core/rng.hpp"

namespace dt {

Transformer::Transformer(const ModelConfig& cfg, int micro_batch, int seq_len, const ModelParallel& par,
                         int act_slots, Device dev)
    : cfg_(cfg), par_(par), B_(micro_batch), T_(seq_len), nslots_(act_slots), param_arena_(dev),
      grad_arena_(dev), act_arena_(dev) {
  const Placement& pl = par_.place;
  DT_CHECK(pl.tp == 1 || par_.tp_comm, "tensor parallelism needs a tp communicator");
  DT_CHECK(par_.cp == 1 || (par_.cp_comm && T_ % 2 == 0), "context parallelism needs a cp communicator and two chunks");
  if (pl.pp > 1 && cfg_.tie_embeddings)
    fail("model.tie_embeddings with parallel.pp > 1 is not supported (embedding and head sit on different stages); "
         "expected tie_embeddings: false or pp: 1");
  std::tie(l0_, l1_) = stage_layers(cfg_.n_layers, pl.pp, pl.pp_stage);
  Hl_ = cfg_.n_heads / pl.tp;
  KVl_ = cfg_.n_kv_heads / pl.tp;
  Fl_ = cfg_.ffn_hidden / pl.tp;
  Vl_ = cfg_.vocab_size / pl.tp;
  v0_ = Vl_ * pl.tp_rank;
  for (const ParamSpec& p : param_registry(cfg_)) {
    if (!stage_owns(p, cfg_.n_layers, pl.pp, pl.pp_stage)) continue;
    local_specs_.push_back(p);
    slices_.push_back(tp_slice(p, pl.tp_rank, pl.tp));
  }
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
  // RoPE positions of this rank's rows: its two chunks under context parallelism.
  if (par_.cp == 1) {
    ops::rope_table(rope_, cfg_.rope_theta, 0);
  } else {
    const int C = T_ / 2;
    ops::rope_table(rope_.slice0(0, C), cfg_.rope_theta, int64_t(par_.cp_rank) * C);
    ops::rope_table(rope_.slice0(C, T_), cfg_.rope_theta, int64_t(2 * par_.cp - 1 - par_.cp_rank) * C);
  }
}

// Walks the local registry in order; the same walk over the gradient arena
// puts each gradient at its parameter's offset.
void Transformer::build_params(Arena& a, std::vector<Tensor>& views, Weights& w) {
  views.clear();
  for (size_t i = 0; i < slices_.size(); ++i) {
    const TpSlice& s = slices_[i];
    views.push_back(local_specs_[i].shape.size() == 1 ? a.alloc_f32({s.rows}) : a.alloc_f32({s.rows, s.cols}));
  }
  w.layers.assign(l1_ - l0_, {});
  size_t i = 0;
  if (has_embed()) w.embed = views[i++];
  for (LayerWeights& L : w.layers) {
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
  if (has_head()) {
    w.final_norm = views[i++];
    w.lm_head = cfg_.tie_embeddings ? w.embed : views[i++];
  }
  DT_CHECK(i == views.size(), "registry and model layout disagree");
  // Pad to a whole number of pad_multiple·16 floats (ZeRO-1 shards stay cache-line aligned).
  const int64_t unit = int64_t(par_.pad_multiple) * 16;
  const int64_t used = int64_t((a.used() + 63) / 64 * 64 / 4);
  if (used % unit != 0 || a.used() != size_t(used) * 4) a.alloc_f32({used % unit ? unit - used % unit : unit});
}

// With recomputation, what the backward rebuilds lives once in work_ and the
// per-layer structs alias it; only what is kept is allocated per layer:
//   none: everything;  attention: all but ln1, q, k, v, att and the attention
//   cache;  full: the layer input x only.
void Transformer::build_acts(Arena& a) {
  const int64_t B = B_, T = T_, N = B * T, D = cfg_.d_model, d = cfg_.head_dim();
  const int64_t Dl = 2 * Hl_ * d, kvl = 2 * KVl_ * d;
  const bool diff = cfg_.attention == AttentionKind::Diff;
  const Recompute rc = cfg_.recompute;
  auto attention_part = [&](LayerActs& L) {
    L.ln1 = a.alloc_f32({N, D});
    L.rstd1 = a.alloc_f32({N});
    L.q = a.alloc_f32({B, T, 2 * Hl_, d});
    L.k = a.alloc_f32({B, T, 2 * KVl_, d});
    L.v = a.alloc_f32({N, kvl});
    L.att = a.alloc_f32({N, Dl});
    if (diff) {
      L.diff.o1 = a.alloc_f32({B, T, Hl_, 2 * d});
      L.diff.o2 = a.alloc_f32({B, T, Hl_, 2 * d});
      L.diff.lse1 = a.alloc_f32({B, Hl_, T});
      L.diff.lse2 = a.alloc_f32({B, Hl_, T});
      L.diff.rstd = a.alloc_f32({B, T, Hl_});
    } else {
      L.lse = a.alloc_f32({B, 2 * Hl_, T});
    }
  };
  auto mlp_part = [&](LayerActs& L) {
    L.xm = a.alloc_f32({N, D});
    L.ln2 = a.alloc_f32({N, D});
    L.rstd2 = a.alloc_f32({N});
    L.h1 = a.alloc_f32({N, Fl_});
    L.h3 = a.alloc_f32({N, Fl_});
    L.act = a.alloc_f32({N, Fl_});
  };
  work_ = {};
  if (rc != Recompute::None) attention_part(work_);
  if (rc == Recompute::Full) mlp_part(work_);
  slots_.assign(nslots_, {});
  for (SlotActs& S : slots_) {
    S.layers.assign(l1_ - l0_, {});
    for (LayerActs& L : S.layers) {
      L = work_;  // aliases for whatever is recomputed
      L.x = a.alloc_f32({N, D});
      if (rc == Recompute::None) attention_part(L);
      if (rc != Recompute::Full) mlp_part(L);
    }
    S.out = a.alloc_f32({N, D});
    S.tokens = a.alloc(DType::I32, {N});
    S.targets = a.alloc(DType::I32, {N});
    if (has_head()) {
      S.lnf = a.alloc_f32({N, D});
      S.rstdf = a.alloc_f32({N});
      S.logits = a.alloc_f32({N, Vl_});
      for (Tensor* t : {&S.losses, &S.rowmax, &S.sumexp, &S.target_logit}) *t = a.alloc_f32({N});
    }
  }
  rope_ = a.alloc_f32({T, d});
  if (par_.cp > 1) {
    const int64_t heads = diff ? Hl_ : 2 * Hl_;
    for (int i = 0; i < 2; ++i) {
      ring_k_[i] = a.alloc_f32({B, T, 2 * KVl_, d});
      ring_v_[i] = a.alloc_f32({N, kvl});
      ring_dk_[i] = a.alloc_f32({B, T, 2 * KVl_, d});
      ring_dv_[i] = a.alloc_f32({N, kvl});
      blk_out_[i] = a.alloc_f32({B, T, heads, Dl / heads});
      blk_lse_[i] = a.alloc_f32({B, heads, T});
    }
    cp_dpre_ = a.alloc_f32({B, T, heads, Dl / heads});
  }
  dx_ = a.alloc_f32({N, D});
  dout_ = a.alloc_f32({N, D});
  dln_ = a.alloc_f32({N, D});
  dtmp_ = a.alloc_f32({N, Dl});
  dact_ = a.alloc_f32({N, Fl_});
  dh1_ = a.alloc_f32({N, Fl_});
  dh3_ = a.alloc_f32({N, Fl_});
  dq_ = a.alloc_f32({B, T, 2 * Hl_, d});
  dk_ = a.alloc_f32({B, T, 2 * KVl_, d});
  dv_ = a.alloc_f32({N, kvl});
}

void Transformer::init_weights(uint64_t seed) {
  for (size_t i = 0; i < local_specs_.size(); ++i) {
    const ParamSpec& p = local_specs_[i];
    const TpSlice& s = slices_[i];
    float* x = params_[i].f32();
    const int64_t n = s.numel();
    if (p.init == InitKind::Ones) {
      for (int64_t j = 0; j < n; ++j) x[j] = 1.f;
      continue;
    }
    const uint64_t stream = hash_name(p.name);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; ++j)
      x[j] = float(p.init_std * normal_at(seed, stream, uint64_t(global_index(p, s, j))));
  }
}

Tensor Transformer::input_act(int slot) const {
  return slots_[slot].layers.empty() ? slots_[slot].out : slots_[slot].layers[0].x;
}

static size_t find_param(const std::vector<ParamSpec>& r, const std::string& name) {
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i].name == name) return i;
  fail("no parameter named '", name, "' on this rank");
}

Tensor Transformer::param(const std::string& name) const { return params_[find_param(local_specs_, name)]; }
Tensor Transformer::grad(const std::string& name) const { return grads_[find_param(local_specs_, name)]; }

float Transformer::lambda(int layer) const {
  DT_CHECK(cfg_.attention == AttentionKind::Diff, "λ exists only for diff attention");
  DT_CHECK(layer >= l0_ && layer < l1_, "layer ", layer, " is not on this stage");
  const LayerWeights& L = w_.layers[layer - l0_];
  return ops::diff_lambda({L.lq1, L.lk1, L.lq2, L.lk2, float(ModelConfig::lambda_init(layer))});
}

void Transformer::tp_sum(Tensor t) {
  if (par_.place.tp > 1) par_.tp_comm->all_reduce_sum(t);
}

void Transformer::reduce_tp_replicated_grads() {
  if (par_.place.tp == 1 || cfg_.attention != AttentionKind::Diff) return;
  for (LayerWeights& G : g_.layers)
    for (Tensor t : {G.lq1, G.lk1, G.lq2, G.lk2, G.subln}) tp_sum(t);
}

}  // namespace dt
