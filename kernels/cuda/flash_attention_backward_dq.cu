// The deterministic dQ pass of the flash backward (flash_attention_backward.cu
// runs it after the dK/dV kernel when ops::deterministic(); CPU twin: the dq
// part of tiles::backward in kernels/cpu/attention_tile_engine.cpp).
//
// One block per (query tile, query head, sequence) keeps Q_m, dO, lse and Δ of
// its rows in shared memory and walks the key tiles its rows can see (causal:
// up to its last row), recomputing per tile
//   S_m = Q_m K_mᵀ,  G = dO Vᵀ,  dS_m = P_m ∘ (dscale_m G − Δ_m)
// and accumulating dQ_m += dS_m K_m in wmma registers; the epilogue writes
// scale · dQ_m once. Each dq element thus has one writer and the key tiles are
// summed in ascending order, whatever the scheduling. Memory beyond the inputs:
// none (the atomic mode's fp32 accumulator is not needed); with many key-block
// copies of dQ (O(T²/tile)) ruled out at 64K tokens, the cost is time: Q Kᵀ and
// dO Vᵀ are computed a second time.
#include <algorithm>

#include "kernels/cuda/flash_attention_backward.cuh"

namespace dt::cuda_ops::flash {

namespace {

using namespace nvcuda;

// 64 query rows per block (the dQ fragments stay in registers: MAPS·4·D/16
// per block, at most 8 per warp); the key tile as in the dK/dV kernel.
template <int D_, int MAPS_>
struct BwdDq : BwdTiles<D_, MAPS_, 64, MAPS_ * D_ == 256 ? 32 : 64> {
  using T = BwdTiles<D_, MAPS_, 64, MAPS_ * D_ == 256 ? 32 : 64>;
  using T::BK, T::BQ, T::D, T::DV, T::LDK, T::LDP, T::LDQ32, T::LDS, T::LDV, T::MAPS;
  // Query side, for the whole block.
  static constexpr size_t kQ = 0;                                     // bf16 [MAPS][BQ][LDK]
  static constexpr size_t kdO = kQ + sizeof(bf16) * MAPS * BQ * LDK;   // bf16 [BQ][LDV]
  static constexpr size_t kL = kdO + sizeof(bf16) * BQ * LDV;          // f32 lse [MAPS·BQ]
  static constexpr size_t kDelta = kL + sizeof(float) * MAPS * BQ;     // f32 Δ   [MAPS·BQ]
  static constexpr size_t kRegion = kDelta + sizeof(float) * MAPS * BQ;
  // Key side, per key tile.
  static constexpr size_t kK = kRegion;                                // bf16 [MAPS][BK][LDK]
  static constexpr size_t kV = kK + sizeof(bf16) * MAPS * BK * LDK;    // bf16 [BK][LDV]
  static constexpr size_t kS = kV + sizeof(bf16) * BK * LDV;           // f32  [MAPS][BQ][LDS]
  static constexpr size_t kG = kS + sizeof(float) * MAPS * BQ * LDS;   // f32  [BQ][LDS]
  static constexpr size_t kdS = kG + sizeof(float) * BQ * LDS;         // bf16 [MAPS][BQ][LDP]
  static constexpr size_t kLoopEnd = kdS + sizeof(bf16) * MAPS * BQ * LDP;
  // Epilogue over the key side: dQ_m in f32.
  static constexpr size_t kdQ32 = kRegion;                             // f32 [MAPS][BQ][LDQ32]
  static constexpr size_t kEpilogueEnd = kdQ32 + sizeof(float) * MAPS * BQ * LDQ32;
  static constexpr size_t kBytes = kLoopEnd > kEpilogueEnd ? kLoopEnd : kEpilogueEnd;
  static_assert(kBytes <= kMaxSmem, "dQ pass tiles exceed sm_80 shared memory");
  static_assert(kRegion % 32 == 0, "wmma tiles need 32-byte aligned sections");
  static constexpr int kQF = (BQ / 16) * (D / 16);  // dQ fragments of one map
  static constexpr int NDQ = MAPS * kQF / kWarps;   // held by each warp
  static_assert(MAPS * kQF % kWarps == 0, "dQ fragments split evenly over the warps");
};

// grid (query tiles, query heads, B); block kThreads.
template <int D, int MAPS>
__global__ void __launch_bounds__(kThreads, 1) dq_kernel(Problem p, BackwardIo io, const float* delta) {
  using C = BwdDq<D, MAPS>;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  const auto [sK, sV, sQ, sdO, sdS, sS, sG, sL, sDelta] = step_tiles<C>(smem);

  const int warp = threadIdx.x / 32;
  const int i0 = blockIdx.x * C::BQ, h = blockIdx.y, b = blockIdx.z;
  const int rows = min(C::BQ, p.nq - i0);
  const int g = h / (p.heads / p.kv);
  const float scale = 1.f / sqrtf(float(D));
  float ds[MAPS];
  for (int m = 0; m < MAPS; ++m) ds[m] = io.dscale[m];

  const int64_t qrow0 = int64_t(b) * p.Tq + p.q0 + i0;  // first query row in q, dO, dq
  load_query_side<C>(sQ, sdO, p, io, b, h, i0, rows);
  load_row_stats<C>(sL, sDelta, p, io, delta, b, h, i0, rows);

  FragC acc[C::NDQ];  // fragment f = warp + t·kWarps of dQ (all maps)
#pragma unroll
  for (int t = 0; t < C::NDQ; ++t) wmma::fill_fragment(acc[t], 0.f);

  // Causal: keys after the tile's last row are masked for all of it.
  const int key_end = p.causal ? min(p.nk, i0 + rows) : p.nk;
  for (int j0 = 0; j0 < key_end; j0 += C::BK) {
    const int keys = min(C::BK, p.nk - j0);
    __syncthreads();  // the previous step is done with the key side
    load_key_side<C>(sK, sV, p, b, g, j0, keys);
    __syncthreads();
    scores_and_dp<C>(sQ, sK, sdO, sV, sS, sG);
    __syncthreads();
    probs_and_ds<C>(sS, sG, sL, sDelta, ds, i0, j0, rows, keys, p.causal, scale, sdS, nullptr);
    __syncthreads();
    // dQ_m (BQ×D) += dS_m (BQ×BK) · K_m (BK×D)
#pragma unroll
    for (int t = 0; t < C::NDQ; ++t) {
      const int f = warp + t * kWarps, m = f / C::kQF, fi = (f % C::kQF) / (D / 16), fj = f % (D / 16);
      dq_fragment<C>(acc[t], sdS, sK, m, fi, fj);
    }
  }
  __syncthreads();  // the key side becomes the fp32 dQ tiles

  float* sdQ32 = reinterpret_cast<float*>(smem + C::kdQ32);
#pragma unroll
  for (int t = 0; t < C::NDQ; ++t) {
    const int f = warp + t * kWarps, m = f / C::kQF, fi = (f % C::kQF) / (D / 16), fj = f % (D / 16);
    wmma::store_matrix_sync(sdQ32 + (m * C::BQ + fi * 16) * C::LDQ32 + fj * 16, acc[t], C::LDQ32,
                            wmma::mem_row_major);
  }
  __syncthreads();
  // dq (B,Tq,heads·maps,D) rows of this tile: = or += scale · dQ_m.
  for (int e = threadIdx.x; e < MAPS * C::BQ * D; e += kThreads) {
    const int m = e / (C::BQ * D), r = e / D % C::BQ, c = e % D;
    if (r >= rows) continue;
    const int64_t idx = ((qrow0 + r) * p.heads * MAPS + h * MAPS + m) * D + c;
    float x = scale * sdQ32[(m * C::BQ + r) * C::LDQ32 + c];
    if (io.accumulate) x += __bfloat162float(io.dq[idx]);
    io.dq[idx] = __float2bfloat16(x);
  }
}

template <int D, int MAPS>
void launch_dq(const Problem& p, const BackwardIo& io, const float* delta) {
  using C = BwdDq<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(dq_kernel<D, MAPS>, C::kBytes, configured);
  const dim3 grid((p.nq + C::BQ - 1) / C::BQ, p.heads, p.B);
  DT_LAUNCH((dq_kernel<D, MAPS>), grid, kThreads, C::kBytes, p, io, delta);
}

}  // namespace

void dq_pass(const Problem& p, const BackwardIo& io, const float* delta) {
  if (p.d == 64 && p.maps == 1) return launch_dq<64, 1>(p, io, delta);
  if (p.d == 128 && p.maps == 1) return launch_dq<128, 1>(p, io, delta);
  if (p.d == 64 && p.maps == 2) return launch_dq<64, 2>(p, io, delta);
  if (p.d == 128 && p.maps == 2) return launch_dq<128, 2>(p, io, delta);
  fail("flash attention dQ pass: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
}

}  // namespace dt::cuda_ops::flash
