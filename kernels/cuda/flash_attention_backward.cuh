// What the two flash backward kernels share (flash_attention_backward.cu: dK
// and dV; flash_attention_backward_dq.cu: dQ). Both run on mma.sync fragments
// (kernels/cuda/ptx.cuh) with S, G = dO·Vᵀ, P and dS in registers. CPU twin:
// tiles::backward in kernels/cpu/attention_tile_engine.cpp.
//
// For query rows i and keys j, with the forward's lse and
// Δ_m[i] = dscale_m · (dO[i] · O_m[i]) (delta_kernel, or the differential
// combine's backward, which has both at hand):
//   S_m = Q_m K_mᵀ,  G = dO Vᵀ (shared by the maps),  P_m = exp(S_m·scale − lse_m),
//   dS_m = P_m ∘ (dscale_m G − Δ_m),
//   dV = Σ_m dscale_m P_mᵀ dO,  dK_m = scale · dS_mᵀ Q_m,  dQ_m = scale · dS_m K_m.
#pragma once
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops::flash {

// P and dS of one score s with its G element gv: p = exp(s·scale − lse) where
// visible, exactly 0 where masked; ds = p·(dscale·gv − Δ).
struct PdS {
  float p, ds;
};
__device__ __forceinline__ PdS p_and_ds(float s, float gv, float lse, float delta, float dscale, float scale,
                                        bool visible) {
  const float p = visible ? __expf(s * scale - lse) : 0.f;
  return {p, p * (dscale * gv - delta)};
}

// delta (maps, B, heads, nq) f32, as the kernels read it: element (m, b, h, i).
__device__ __forceinline__ int64_t delta_index(const Problem& p, int m, int b, int h, int i) {
  return (int64_t(m) * p.B * p.heads + int64_t(b) * p.heads + h) * p.nq + i;
}

// dq rows [q0, q0+nq) of (B,Tq,heads·maps,d) = (or += when io.accumulate)
// scale · Σ_j dS_m K_m, with dO (B,Tq,heads,dv) in bf16, one block per (query tile, query head, sequence) that
// owns its rows' dQ: one writer per element, key tiles summed in ascending
// order, no atomics (flash_attention_backward_dq.cu).
void dq_pass(const Problem& p, const BackwardIo& io, const bf16* dO, const float* delta);

}  // namespace dt::cuda_ops::flash
