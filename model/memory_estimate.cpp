#include "model/memory_estimate.hpp"

#include <cstdio>
#include <initializer_list>

#include "core/error.hpp"
#include "model/layer.hpp"

namespace dt {
namespace {

// An Arena's measuring pass (core/arena.hpp): every tensor starts on a 64-byte boundary.
struct ArenaSize {
  CheckedSize used;
  bool empty = true;

  void add(DType t, std::initializer_list<int64_t> dims) {
    CheckedSize bytes = int64_t(dtype_size(t));
    for (int64_t n : dims) bytes *= n;
    add_bytes(bytes);
  }
  void add_bytes(CheckedSize bytes) {
    used = used.round_up(64) + bytes;
    empty = false;
  }
  // `times` copies of a group of tensors measured on its own (from offset 0):
  // each copy starts on a boundary, so all but the last take the rounded size.
  void add(const ArenaSize& group, int64_t times) {
    if (group.empty || times == 0) return;
    used = used.round_up(64) + group.used.round_up(64) * (times - 1) + group.used;
    empty = false;
  }
};

// The parameters of `specs` as this rank's tensor-parallel slices, in order
// (Transformer::build_params); with `compute_copies` the bf16 compute copies
// of the matrices instead (registry: has_compute_copy; Transformer::build_compute_weights).
ArenaSize param_group(const std::vector<ParamSpec>& specs, const Placement& pl, bool compute_copies) {
  ArenaSize a;
  for (const ParamSpec& p : specs) {
    if (compute_copies && !p.has_compute_copy) continue;
    const TpSlice s = tp_slice(p, pl.tp_rank, pl.tp);
    a.add(compute_copies ? DType::BF16 : DType::F32, {s.rows, s.cols});
  }
  return a;
}

// build_params ends with padding to a whole number of pad_multiple·16 floats.
CheckedSize padded_param_bytes(const ArenaSize& a, int pad_multiple) {
  if (a.used.overflowed()) return a.used;
  const int64_t unit = int64_t(pad_multiple) * 16, raw = a.used.value();
  const int64_t used = a.used.round_up(64).value() / 4;
  if (used % unit != 0) return (CheckedSize(used) + (unit - used % unit)) * 4;
  return (CheckedSize(used) + (raw == used * 4 ? 0 : unit)) * 4;
}

}  // namespace

TransformerBytes transformer_bytes(const ModelConfig& m, int64_t micro_batch, int64_t seq_len,
                                   const ModelParallel& par, int act_slots, Device dev) {
  const Placement& pl = par.place;
  const auto [l0, l1] = stage_layers(m.n_layers, pl.pp, pl.pp_stage);
  const bool embed = pl.pp_stage == 0, head = pl.pp_stage == pl.pp - 1;
  const int64_t layers = l1 - l0;
  TransformerBytes r;

  // Parameters, gradients and (CUDA) compute copies: embedding, layers, head.
  const std::vector<ParamSpec> first = embedding_params(m), layer = layer_params(m, l0), last = head_params(m);
  for (bool compute : {false, true}) {
    if (compute && dev.is_cpu()) break;
    ArenaSize a;
    if (embed) a.add(param_group(first, pl, compute), 1);
    a.add(param_group(layer, pl, compute), layers);
    if (head) a.add(param_group(last, pl, compute), 1);
    if (compute) r.compute_weights = a.used;
    else r.params = r.grads = padded_param_bytes(a, par.pad_multiple);
  }

  // Activations (Transformer::build_acts): f32 on the CPU, bf16 on CUDA; statistics in f32.
  const DType act = dev.is_cpu() ? DType::F32 : DType::BF16, f32 = DType::F32;
  const int64_t B = micro_batch, T = seq_len, D = m.d_model, d = m.head_dim();
  const CheckedSize tokens = CheckedSize(B) * T;
  if (tokens.overflowed()) {
    r.activations = tokens;
    return r;
  }
  const int64_t N = tokens.value();
  const AttnGeometry g = attn_geometry(m, pl.tp);
  const int64_t Fl = m.ffn_hidden / pl.tp, Vl = m.vocab_size / pl.tp, H = g.heads;
  auto attention_part = [&](ArenaSize& a) {
    a.add(act, {N, D}), a.add(f32, {N});                                  // ln1, rstd1
    a.add(act, {B, T, g.q_heads(), d}), a.add(act, {B, T, g.k_heads(), d});  // q, k
    a.add(act, {N, g.v_cols()}), a.add(act, {N, g.out_cols()});          // v, att
    if (g.maps == 2) {
      a.add(act, {B, T, H, g.dv}), a.add(act, {B, T, H, g.dv});            // o1, o2
      a.add(f32, {B, H, T}), a.add(f32, {B, H, T}), a.add(f32, {B, T, H});  // lse1, lse2, rstd
    } else {
      a.add(f32, {B, H, T});  // lse
    }
    if (m.attention == AttentionKind::DiffV2) a.add(act, {B, T, H, g.dv}), a.add(act, {N, g.out_heads});  // o, lam
  };
  auto mlp_part = [&](ArenaSize& a) {
    a.add(act, {N, D}), a.add(act, {N, D}), a.add(f32, {N});                     // xm, ln2, rstd2
    a.add(act, {N, Fl}), a.add(act, {N, Fl}), a.add(act, {N, Fl});             // h1, h3, act
  };
  ArenaSize acts, slot, per_layer;
  if (m.recompute != Recompute::None) attention_part(acts);  // work_: rebuilt once, shared by all layers
  if (m.recompute == Recompute::Full) mlp_part(acts);
  per_layer.add(act, {N, D});  // x
  if (m.recompute == Recompute::None) attention_part(per_layer);
  if (m.recompute != Recompute::Full) mlp_part(per_layer);
  slot.add(per_layer, layers);
  slot.add(act, {N, D}), slot.add(DType::I32, {N}), slot.add(DType::I32, {N});  // out, tokens, targets
  if (head) {
    slot.add(act, {N, D}), slot.add(f32, {N}), slot.add(act, {N, Vl});  // lnf, rstdf, logits
    for (int i = 0; i < 4; ++i) slot.add(f32, {N});                     // losses, rowmax, sumexp, target_logit
  }
  acts.add(slot, act_slots);
  acts.add(f32, {T, d});  // rope
  if (par.cp > 1) {
    for (int i = 0; i < 2; ++i) {
      acts.add(act, {B, T, g.k_heads(), d}), acts.add(act, {N, g.v_cols()});  // ring_k, ring_v
      acts.add(act, {B, T, g.k_heads(), d}), acts.add(act, {N, g.v_cols()});  // ring_dk, ring_dv
      acts.add(act, {B, T, H, g.dv}), acts.add(f32, {B, H, T});               // blk_out, blk_lse
    }
    acts.add(act, {B, T, H, g.dv});  // cp_dpre
  }
  acts.add(act, {N, D}), acts.add(act, {N, D}), acts.add(f32, {N, D});  // dx, dout, dln (fp32 sums)
  acts.add(act, {N, g.out_cols()});                     // dtmp
  for (int i = 0; i < 3; ++i) acts.add(act, {N, Fl});  // dact, dh1, dh3
  acts.add(act, {B, T, g.q_heads(), d}), acts.add(act, {B, T, g.k_heads(), d});  // dq, dk
  acts.add(act, {N, g.v_cols()});                                               // dv
  if (m.attention == AttentionKind::DiffV2) acts.add(act, {B, T, H, g.dv}), acts.add(act, {N, g.out_heads});  // d_o, dlam
  r.activations = acts.used;
  return r;
}

std::string TransformerBytes::parts() const {
  std::string s = "parameters " + format_bytes(params) + ", gradients " + format_bytes(grads) + ", activations " +
                  format_bytes(activations);
  if (compute_weights.overflowed() || compute_weights.value() > 0)
    s += ", bf16 weight copies " + format_bytes(compute_weights);
  return s;
}

std::string format_bytes(CheckedSize bytes) {
  return bytes.overflowed() ? "over 9.22 EB" : format_bytes(bytes.value());
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1000 && u < 6) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.3g %s", v, units[u]);
  return buf;
}

void require_memory(const std::string& what, CheckedSize need, const std::string& parts, Device dev, int ranks,
                    const std::string& remedy) {
  const CheckedSize all = need * ranks;
  if (all.overflowed())
    fail(what, ": the memory it needs (", parts, ") overflows 64-bit arithmetic; expected ", remedy);
  const int64_t available = device_available_bytes(dev);
  if (available < 0 || all.value() <= available) return;
  const std::string where = dev.is_cpu() ? "this machine" : dev.str();
  const std::string per = ranks > 1 ? " per rank × " + std::to_string(ranks) + " ranks on this node = " +
                                          format_bytes(all.value())
                                    : "";
  fail(what, ": needs ", format_bytes(need.value()), per, " (", parts, ") but ", where, " has ",
       format_bytes(available), " available (", dev.is_cpu() ? "MemAvailable" : "cudaMemGetInfo",
       "); expected ", remedy);
}

}  // namespace dt
