// What the two flash backward kernels share (flash_attention_backward.cu: dK
// and dV, plus dQ by atomics in non-deterministic mode; flash_attention_backward_dq.cu:
// the deterministic dQ pass): the row pitches of their shared-memory tiles and
// the two steps both recompute for a (query tile, key tile) pair. CPU twin:
// tiles::backward in kernels/cpu/attention_tile_engine.cpp.
//
// For query rows i of the tile and keys j, with the forward's lse and
// Δ_m[i] = dscale_m · (dO[i] · O_m[i]) (delta_kernel):
//   S_m = Q_m K_mᵀ,  G = dO Vᵀ (shared by the maps),  P_m = exp(S_m·scale − lse_m),
//   dS_m = P_m ∘ (dscale_m G − Δ_m)
#pragma once
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops::flash {

// Row pitches of one step of BQ query rows × BK keys: padded (+8 bf16, +4 f32)
// against bank conflicts; sections of 16-row multiples keep every wmma pointer
// 32-byte aligned.
template <int D_, int MAPS_, int BQ_, int BK_>
struct BwdTiles {
  static constexpr int D = D_, MAPS = MAPS_, DV = MAPS_ * D_, BQ = BQ_, BK = BK_;
  static constexpr int LDK = D + 8, LDV = DV + 8, LDP = BK + 8;      // bf16: Q/K, dO/V, P/dS rows
  static constexpr int LDS = BK + 4, LDQ32 = D + 4, LDV32 = DV + 4;  // f32: S/G, dQ/dK, dV rows
};

// The shared-memory regions both backward kernels use, at their layout C's
// offsets (C::kK, ...): the key side (K, V), the query side (Q, dO, lse, Δ) and
// one step's scores (S, G) and dS.
struct StepTiles {
  bf16 *sK, *sV, *sQ, *sdO, *sdS;
  float *sS, *sG, *sL, *sDelta;
};
template <class C>
__device__ __forceinline__ StepTiles step_tiles(unsigned char* smem) {
  auto bf = [smem](size_t off) { return reinterpret_cast<bf16*>(smem + off); };
  auto f32 = [smem](size_t off) { return reinterpret_cast<float*>(smem + off); };
  return {bf(C::kK), bf(C::kV), bf(C::kQ), bf(C::kdO), bf(C::kdS), f32(C::kS), f32(C::kG), f32(C::kL), f32(C::kDelta)};
}

// acc (16×16) += dS_m rows [16·fi, 16·fi+16) (16×BK) · K_m columns [16·fj, 16·fj+16)
// (BK×16): one fragment of this step's dQ_m. sdS [MAPS][BQ][LDP], sK [MAPS][BK][LDK].
template <class C>
__device__ __forceinline__ void dq_fragment(FragC& acc, const bf16* sdS, const bf16* sK, int m, int fi, int fj) {
  using namespace nvcuda;
#pragma unroll 2
  for (int kk = 0; kk < C::BK; kk += 16) {
    FragA a;
    FragB bk;
    wmma::load_matrix_sync(a, sdS + (m * C::BQ + fi * 16) * C::LDP + kk, C::LDP);
    wmma::load_matrix_sync(bk, sK + (m * C::BK + kk) * C::LDK + fj * 16, C::LDK);
    wmma::mma_sync(acc, a, bk, acc);
  }
}

// sS_m (BQ×BK) = Q_m K_mᵀ for each map, sG (BQ×BK) = dO Vᵀ, in f32. sQ [MAPS][BQ][LDK],
// sK [MAPS][BK][LDK], sdO [BQ][LDV], sV [BK][LDV] bf16; sS [MAPS][BQ][LDS], sG [BQ][LDS].
template <class C>
__device__ __forceinline__ void scores_and_dp(const bf16* sQ, const bf16* sK, const bf16* sdO, const bf16* sV,
                                              float* sS, float* sG) {
  using namespace nvcuda;
  const int warp = threadIdx.x / 32;
  constexpr int kSF = (C::BQ / 16) * (C::BK / 16);
  for (int f = warp; f < (C::MAPS + 1) * kSF; f += kWarps) {
    const int m = f / kSF, fi = (f % kSF) / (C::BK / 16), fj = f % (C::BK / 16);
    FragC acc;
    wmma::fill_fragment(acc, 0.f);
    if (m < C::MAPS) {
#pragma unroll 2
      for (int kk = 0; kk < C::D; kk += 16) {
        FragA a;
        FragBt bt;
        wmma::load_matrix_sync(a, sQ + (m * C::BQ + fi * 16) * C::LDK + kk, C::LDK);
        wmma::load_matrix_sync(bt, sK + (m * C::BK + fj * 16) * C::LDK + kk, C::LDK);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(sS + (m * C::BQ + fi * 16) * C::LDS + fj * 16, acc, C::LDS, wmma::mem_row_major);
    } else {
#pragma unroll 2
      for (int kk = 0; kk < C::DV; kk += 16) {
        FragA a;
        FragBt bt;
        wmma::load_matrix_sync(a, sdO + fi * 16 * C::LDV + kk, C::LDV);
        wmma::load_matrix_sync(bt, sV + fj * 16 * C::LDV + kk, C::LDV);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(sG + fi * 16 * C::LDS + fj * 16, acc, C::LDS, wmma::mem_row_major);
    }
  }
}

// sdS_m [MAPS][BQ][LDP] (bf16) = P_m ∘ (dscale_m·G − Δ_m), exactly zero where
// masked (causal, padded query rows r ≥ rows, padded keys c ≥ keys); sL, sDelta
// [MAPS·BQ]: lse and Δ of the tile's rows. i0, j0: the tile's first query and key
// row within the problem. sPc [BQ][LDP], when not null: Σ_m dscale_m·P_m (for dV).
template <class C>
__device__ __forceinline__ void probs_and_ds(const float* sS, const float* sG, const float* sL, const float* sDelta,
                                             const float* ds, int i0, int j0, int rows, int keys, bool causal,
                                             float scale, bf16* sdS, bf16* sPc) {
  for (int e = threadIdx.x; e < C::BQ * C::BK; e += kThreads) {
    const int r = e / C::BK, c = e % C::BK, i = i0 + r, j = j0 + c;
    const bool visible = r < rows && c < keys && (!causal || j <= i);
    const float gv = sG[r * C::LDS + c];
    float pc = 0.f;
#pragma unroll
    for (int m = 0; m < C::MAPS; ++m) {
      const int row = m * C::BQ + r;
      const float pr = visible ? __expf(sS[row * C::LDS + c] * scale - sL[row]) : 0.f;
      pc += ds[m] * pr;
      sdS[row * C::LDP + c] = __float2bfloat16(pr * (ds[m] * gv - sDelta[row]));
    }
    if (sPc) sPc[r * C::LDP + c] = __float2bfloat16(pc);
  }
}

// sQ [MAPS][BQ][LDK] = Q_m and sdO [BQ][LDV] = dO of query rows i0 .. i0+rows−1
// (problem-relative) of head h, sequence b; zero rows below.
template <class C>
__device__ __forceinline__ void load_query_side(bf16* sQ, bf16* sdO, const Problem& p, const BackwardIo& io, int b,
                                                int h, int i0, int rows) {
  const int64_t qrow0 = int64_t(b) * p.Tq + p.q0 + i0, q_ld = int64_t(p.heads) * C::MAPS * C::D;
  for (int m = 0; m < C::MAPS; ++m)
    load_tile<C::BQ, C::D>(sQ + m * C::BQ * C::LDK, C::LDK, p.q + (qrow0 * p.heads * C::MAPS + h * C::MAPS + m) * C::D,
                           q_ld, rows);
  load_tile<C::BQ, C::DV>(sdO, C::LDV, io.dO, (qrow0 * p.heads + h) * C::DV, int64_t(p.heads) * C::DV, rows);
}

// sK [MAPS][BK][LDK] = K_m and sV [BK][LDV] = V of key rows j0 .. j0+keys−1
// (problem-relative) of kv head g, sequence b; zero rows below.
template <class C>
__device__ __forceinline__ void load_key_side(bf16* sK, bf16* sV, const Problem& p, int b, int g, int j0, int keys) {
  const int64_t krow0 = int64_t(b) * p.Tk + p.k0 + j0, k_ld = int64_t(p.kv) * C::MAPS * C::D;
  for (int m = 0; m < C::MAPS; ++m)
    load_tile<C::BK, C::D>(sK + m * C::BK * C::LDK, C::LDK, p.k + (krow0 * p.kv * C::MAPS + g * C::MAPS + m) * C::D,
                           k_ld, keys);
  load_tile<C::BK, C::DV>(sV, C::LDV, p.v + (krow0 * p.kv + g) * C::DV, int64_t(p.kv) * C::DV, keys);
}

// sL, sDelta [MAPS·BQ] = lse_m and Δ_m of query rows i0 .. i0+rows−1 of head h,
// sequence b (0 for padded rows). delta (maps, B, heads, nq) as delta_kernel writes it.
template <class C>
__device__ __forceinline__ void load_row_stats(float* sL, float* sDelta, const Problem& p, const BackwardIo& io,
                                               const float* delta, int b, int h, int i0, int rows) {
  const int64_t rows_total = int64_t(p.B) * p.heads * p.nq;  // rows of one map in delta
  for (int e = threadIdx.x; e < C::MAPS * C::BQ; e += kThreads) {
    const int m = e / C::BQ, r = e % C::BQ;
    const float* lse = m == 0 ? io.lse[0] : io.lse[1];
    sL[e] = r < rows ? lse[(int64_t(b) * p.heads + h) * p.Tq + p.q0 + i0 + r] : 0.f;
    sDelta[e] = r < rows ? delta[m * rows_total + (int64_t(b) * p.heads + h) * p.nq + i0 + r] : 0.f;
  }
}

// dq rows [q0, q0+nq) of (B,Tq,heads·maps,d) = (or += when io.accumulate) the
// deterministic dQ pass over every key tile (flash_attention_backward_dq.cu).
// Its memory beyond the inputs is none: each block holds its query tile's dQ in
// registers and writes it once.
void dq_pass(const Problem& p, const BackwardIo& io, const float* delta);

}  // namespace dt::cuda_ops::flash
