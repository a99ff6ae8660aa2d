#include "model/transformer.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.hpp"

namespace dt {

Transformer::Transformer(const ModelConfig& cfg, int micro_batch, int seq_len, const ModelParallel& par,
                         int act_slots, Device dev)
    : cfg_(cfg), par_(par), act_(dev.is_cpu() ? DType::F32 : DType::BF16), B_(micro_batch), T_(seq_len),
      nslots_(act_slots), param_arena_(dev), grad_arena_(dev), act_arena_(dev), compute_arena_(dev) {
  const Placement& pl = par_.place;
  DT_CHECK(pl.tp == 1 || par_.tp_comm, "tensor parallelism needs a tp communicator");
  tp_ = {par_.tp_comm, pl.tp_rank, pl.tp};
  geom_ = attn_geometry(cfg_, pl.tp);
  DT_CHECK(par_.cp == 1 || (par_.cp_comm && T_ % 2 == 0), "context parallelism needs a cp communicator and two chunks");
  if (pl.pp > 1 && cfg_.tie_embeddings)
    fail("model.tie_embeddings with parallel.pp > 1 is not supported (embedding and head sit on different stages); "
         "expected tie_embeddings: false or pp: 1");
  std::tie(l0_, l1_) = stage_layers(cfg_.n_layers, pl.pp, pl.pp_stage);
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
  compute_arena_.begin_measure();
  build_compute_weights(compute_arena_);
  compute_arena_.commit();
  build_compute_weights(compute_arena_);
  act_arena_.begin_measure();
  build_acts(act_arena_);
  act_arena_.commit();
  build_acts(act_arena_);
  // RoPE positions of this rank's rows: its two chunks under context parallelism.
  if (par_.cp == 1) {
    ops::rope_table(rope_, cfg_.rope_theta, 0);
  } else {
    const int C = T_ / 2;
    for (int half = 0; half < 2; ++half)
      ops::rope_table(rope_.slice0(half * C, (half + 1) * C), cfg_.rope_theta,
                      int64_t(cp_chunk(par_.cp_rank, par_.cp, half)) * C);
  }
}

// Where a registry entry's view lives in a Weights: the embedding, final norm
// and head by name, a layer's parameters by their name within the layer
// ("attn.q_proj.weight"). The registry alone decides the order in the arena.
static Tensor& weight_field(Weights& w, const ParamSpec& p, int first_layer) {
  static const std::pair<const char*, Tensor LayerWeights::*> kLayerFields[] = {
      {"attn_norm.weight", &LayerWeights::attn_norm}, {"attn.q_proj.weight", &LayerWeights::wq},
      {"attn.k_proj.weight", &LayerWeights::wk},       {"attn.v_proj.weight", &LayerWeights::wv},
      {"attn.out_proj.weight", &LayerWeights::wo},     {"attn.lambda_q1", &LayerWeights::lq1},
      {"attn.lambda_k1", &LayerWeights::lk1},          {"attn.lambda_q2", &LayerWeights::lq2},
      {"attn.lambda_k2", &LayerWeights::lk2},          {"attn.subln.weight", &LayerWeights::subln},
      {"attn.lambda_proj.weight", &LayerWeights::wlam},
      {"mlp_norm.weight", &LayerWeights::mlp_norm},    {"mlp.w1.weight", &LayerWeights::w1},
      {"mlp.w2.weight", &LayerWeights::w2},            {"mlp.w3.weight", &LayerWeights::w3}};
  if (p.name == "embed.weight") return w.embed;
  if (p.name == "final_norm.weight") return w.final_norm;
  if (p.name == "lm_head.weight") return w.lm_head;
  const std::string prefix = "layers." + std::to_string(p.layer) + ".";
  if (p.layer >= first_layer && p.layer - first_layer < int(w.layers.size()) && p.name.rfind(prefix, 0) == 0)
    for (const auto& [name, field] : kLayerFields)
      if (p.name.compare(prefix.size(), std::string::npos, name) == 0) return w.layers[p.layer - first_layer].*field;
  fail("internal error: registry entry ", p.name, " has no place in the model's weights (model/transformer.cpp)");
}

// Walks the local registry in order; the same walk over the gradient arena
// puts each gradient at its parameter's offset.
void Transformer::build_params(Arena& a, std::vector<Tensor>& views, Weights& w) {
  views.clear();
  for (size_t i = 0; i < slices_.size(); ++i) {
    const TpSlice& s = slices_[i];
    views.push_back(local_specs_[i].shape.size() == 1 ? a.alloc_f32({s.rows}) : a.alloc_f32({s.rows, s.cols}));
  }
  w = {};
  w.layers.assign(l1_ - l0_, {});
  for (size_t i = 0; i < views.size(); ++i) weight_field(w, local_specs_[i], l0_) = views[i];
  if (has_head() && cfg_.tie_embeddings) w.lm_head = w.embed;
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
  // Activations in act_; statistics (rstd, lse, losses) and the RoPE table in f32.
  auto act = [&](std::initializer_list<int64_t> dims) { return a.alloc(act_, dims); };
  const AttnGeometry& g = geom_;
  const int64_t B = B_, T = T_, N = B * T, D = cfg_.d_model, d = g.d;
  const bool diff = cfg_.attention == AttentionKind::Diff, v2 = cfg_.attention == AttentionKind::DiffV2;
  const Recompute rc = cfg_.recompute;
  auto attention_part = [&](LayerActs& L) {
    L.ln1 = act({N, D});
    L.rstd1 = a.alloc_f32({N});
    L.q = act({B, T, g.q_heads(), d});
    L.k = act({B, T, g.k_heads(), d});
    L.v = act({N, g.v_cols()});
    L.att = act({N, g.out_cols()});
    if (diff) {
      L.diff.o1 = act({B, T, g.heads, g.dv});
      L.diff.o2 = act({B, T, g.heads, g.dv});
      L.diff.lse1 = a.alloc_f32({B, g.heads, T});
      L.diff.lse2 = a.alloc_f32({B, g.heads, T});
      L.diff.rstd = a.alloc_f32({B, T, g.heads});
    } else {
      L.lse = a.alloc_f32({B, g.heads, T});
    }
    if (v2) {
      L.o = act({B, T, g.heads, g.dv});
      L.lam = act({N, g.out_heads});
    }
  };
  auto mlp_part = [&](LayerActs& L) {
    L.xm = act({N, D});
    L.ln2 = act({N, D});
    L.rstd2 = a.alloc_f32({N});
    L.h1 = act({N, Fl_});
    L.h3 = act({N, Fl_});
    L.act = act({N, Fl_});
  };
  work_ = {};
  if (rc != Recompute::None) attention_part(work_);
  if (rc == Recompute::Full) mlp_part(work_);
  slots_.assign(nslots_, {});
  for (SlotActs& S : slots_) {
    S.layers.assign(l1_ - l0_, {});
    for (LayerActs& L : S.layers) {
      L = work_;  // aliases for whatever is recomputed
      L.x = act({N, D});
      if (rc == Recompute::None) attention_part(L);
      if (rc != Recompute::Full) mlp_part(L);
    }
    S.out = act({N, D});
    S.tokens = a.alloc(DType::I32, {N});
    S.targets = a.alloc(DType::I32, {N});
    if (has_head()) {
      S.lnf = act({N, D});
      S.rstdf = a.alloc_f32({N});
      S.logits = act({N, Vl_});
      for (Tensor* t : {&S.losses, &S.rowmax, &S.sumexp, &S.target_logit}) *t = a.alloc_f32({N});
    }
  }
  rope_ = a.alloc_f32({T, d});
  ring_ = {};
  if (par_.cp > 1) {
    ring_.comm = par_.cp_comm, ring_.rank = par_.cp_rank, ring_.size = par_.cp;
    for (int i = 0; i < 2; ++i) {
      ring_.k[i] = act({B, T, g.k_heads(), d});
      ring_.v[i] = act({N, g.v_cols()});
      ring_.dk[i] = act({B, T, g.k_heads(), d});
      ring_.dv[i] = act({N, g.v_cols()});
      ring_.blk_out[i] = act({B, T, g.heads, g.dv});
      ring_.blk_lse[i] = a.alloc_f32({B, g.heads, T});
    }
    ring_.dpre = act({B, T, g.heads, g.dv});
  }
  dx_ = act({N, D});
  dout_ = act({N, D});
  // Input gradients of the projections (Wq, Wk, Wv, W_λ; W1, W3; the head) are
  // summed by the GEMMs in fp32, not rounded to bf16 after each one.
  dln_ = a.alloc_f32({N, D});
  dtmp_ = act({N, g.out_cols()});
  dact_ = act({N, Fl_});
  dh1_ = act({N, Fl_});
  dh3_ = act({N, Fl_});
  dq_ = act({B, T, g.q_heads(), d});
  dk_ = act({B, T, g.k_heads(), d});
  dv_ = act({N, g.v_cols()});
  d_o_ = dlam_ = {};
  if (v2) d_o_ = act({B, T, g.heads, g.dv}), dlam_ = act({N, g.out_heads});
}

// The matrices the GEMMs read (registry: has_compute_copy): on CUDA a bf16
// copy of each (the tied head shares the embedding's), on the CPU the
// parameters themselves.
void Transformer::build_compute_weights(Arena& a) {
  cw_ = w_;
  compute_copies_.clear();
  if (act_ == DType::F32) return;
  for (size_t i = 0; i < local_specs_.size(); ++i) {
    if (!local_specs_[i].has_compute_copy) continue;
    Tensor& t = weight_field(cw_, local_specs_[i], l0_);
    t = a.alloc(act_, {t.dim(0), t.dim(1)});
    compute_copies_.push_back({t, params_[i]});
  }
  if (has_head() && cfg_.tie_embeddings) cw_.lm_head = cw_.embed;
}

void Transformer::sync_compute_weights() {
  for (const auto& [copy, master] : compute_copies_) ops::copy(copy, master);
}

void Transformer::init_weights(uint64_t seed) {
  std::vector<float> host;
  for (size_t i = 0; i < local_specs_.size(); ++i) {
    const ParamSpec& p = local_specs_[i];
    const TpSlice& s = slices_[i];
    const int64_t n = s.numel();
    // Generated on the host, then copied to the parameter's device.
    float* x = params_[i].device.is_cpu() ? params_[i].f32() : (host.resize(size_t(n)), host.data());
    if (p.init == InitKind::Ones) {
      for (int64_t j = 0; j < n; ++j) x[j] = 1.f;
    } else {
      const uint64_t stream = hash_name(p.name);
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < n; ++j)
        x[j] = float(p.init_std * normal_at(seed, stream, uint64_t(global_index(p, s, j))));
    }
    if (x != params_[i].ptr) ops::copy(params_[i], cpu_f32(x, {n}));
  }
  sync_compute_weights();
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

void Transformer::lambda_into(int layer, Tensor out) const {
  DT_CHECK(cfg_.attention == AttentionKind::Diff, "λ exists only for diff attention");
  DT_CHECK(layer >= l0_ && layer < l1_, "layer ", layer, " is not on this stage");
  const LayerWeights& L = w_.layers[layer - l0_];
  ops::diff_lambda_into(out, {L.lq1, L.lk1, L.lq2, L.lk2, float(ModelConfig::lambda_init(layer))});
}

void Transformer::reduce_tp_replicated_grads() {
  for (int l = l0_; l < l1_; ++l) reduce_tp_replicated_grads(l);
}

// The registry's grad_summed_over_tp entries of the layer (λ vectors and g_sub).
void Transformer::reduce_tp_replicated_grads(int layer) {
  if (par_.place.tp == 1) return;
  for (size_t i = 0; i < local_specs_.size(); ++i)
    if (local_specs_[i].layer == layer && local_specs_[i].grad_summed_over_tp) tp_.sum(grads_[i]);
}

int64_t Transformer::layer_param_offset(int layer) const {
  DT_CHECK(layer >= l0_ && layer < l1_, "layer ", layer, " is not on this stage");
  const char* first = static_cast<const char*>(w_.layers[layer - l0_].attn_norm.ptr);
  return (first - param_arena_.base()) / int64_t(sizeof(float));
}

}  // namespace dt
