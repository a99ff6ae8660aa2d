// Flash attention backward (FlashAttention-2 style; kernels/cuda/flash_attention.cuh,
// the shared steps in flash_attention_backward.cuh; CPU twin: tiles::backward in
// kernels/cpu/attention_tile_engine.cpp).
//
// 1. delta_kernel:    Δ_m[i] = dscale_m · (dO[i] · O_m[i])  (one warp per query row)
// 2. backward_kernel: one block per (key tile, kv head, sequence) owns dK_m and
//    dV of its keys (wmma accumulators in registers) and loops over every
//    query head of the kv group and every query tile that can see its keys
//    (causal: the tiles at and after it). Per query tile, with the scores
//    recomputed from the saved lse:
//      S_m = Q_m K_mᵀ,  P_m = exp(S_m·scale − lse_m),  G = dO Vᵀ (shared by the maps)
//      dV   += Σ_m dscale_m P_mᵀ dO
//      dS_m  = P_m ∘ (dscale_m G − Δ_m)
//      dK_m += scale · dS_mᵀ Q_m
//    and, only when ops::deterministic() is false:
//      dQ_m += scale · dS_m K_m   (fp32 atomicAdd into a scratch accumulator,
//                                  4·B·nq·heads·maps·d bytes; then dq_store_kernel)
// 3. deterministic (the default): dq_pass (flash_attention_backward_dq.cu), one
//    block per (query tile, query head, sequence) that recomputes S_m, G and dS_m
//    over the visible key tiles and accumulates dQ_m in registers. Every dq
//    element has one writer and a fixed summation order; the price is the
//    recomputed Q Kᵀ and dO Vᵀ (per query/key tile pair the atomic mode's 5
//    tile products become 7 for one map, 8 become 11 for two), and no memory
//    beyond Δ (4·maps·B·heads·nq bytes, as in the atomic mode).
#include <algorithm>

#include "kernels/cuda/flash_attention_backward.cuh"

namespace dt::cuda_ops::flash {

namespace {

using namespace nvcuda;

// Tile sizes and shared-memory layout of one (D, MAPS) instance. The K/V tile
// stays for the whole block; the query-side region is reused by the epilogue
// for the fp32 dK/dV tiles.
template <int D_, int MAPS_>
struct Bwd : BwdTiles<D_, MAPS_, 32, MAPS_ * D_ == 256 ? 32 : 64> {  // 32 query rows per step
  using T = BwdTiles<D_, MAPS_, 32, MAPS_ * D_ == 256 ? 32 : 64>;
  using T::BK, T::BQ, T::D, T::DV, T::LDK, T::LDP, T::LDQ32, T::LDS, T::LDV, T::LDV32, T::MAPS;
  static constexpr size_t kK = 0;                                 // bf16 [MAPS][BK][LDK]
  static constexpr size_t kV = kK + sizeof(bf16) * MAPS * BK * LDK;  // bf16 [BK][LDV]
  static constexpr size_t kRegion = kV + sizeof(bf16) * BK * LDV;
  // Query-side region, per step.
  static constexpr size_t kQ = kRegion;                                 // bf16 [MAPS][BQ][LDK]
  static constexpr size_t kdO = kQ + sizeof(bf16) * MAPS * BQ * LDK;     // bf16 [BQ][LDV]
  static constexpr size_t kS = kdO + sizeof(bf16) * BQ * LDV;            // f32  [MAPS][BQ][LDS]
  static constexpr size_t kG = kS + sizeof(float) * MAPS * BQ * LDS;     // f32  [BQ][LDS]
  static constexpr size_t kPc = kG + sizeof(float) * BQ * LDS;           // bf16 [BQ][LDP]
  static constexpr size_t kdS = kPc + sizeof(bf16) * BQ * LDP;           // bf16 [MAPS][BQ][LDP]
  static constexpr size_t kdQ = kdS + sizeof(bf16) * MAPS * BQ * LDP;    // f32  [MAPS][BQ][LDQ32]
  static constexpr size_t kL = kdQ + sizeof(float) * MAPS * BQ * LDQ32;  // f32 lse [MAPS·BQ]
  static constexpr size_t kDelta = kL + sizeof(float) * MAPS * BQ;       // f32 Δ   [MAPS·BQ]
  static constexpr size_t kLoopEnd = kDelta + sizeof(float) * MAPS * BQ;
  // Epilogue, same region.
  static constexpr size_t kdK32 = kRegion;                                // f32 [MAPS][BK][LDQ32]
  static constexpr size_t kdV32 = kdK32 + sizeof(float) * MAPS * BK * LDQ32;  // f32 [BK][LDV32]
  static constexpr size_t kEpilogueEnd = kdV32 + sizeof(float) * BK * LDV32;
  static constexpr size_t kBytes = kLoopEnd > kEpilogueEnd ? kLoopEnd : kEpilogueEnd;
  static_assert(kBytes <= kMaxSmem, "backward tiles exceed sm_80 shared memory");
  // dK_m and dV fragments held by each warp for the whole block.
  static constexpr int kDkFrags = MAPS * (BK / 16) * (D / 16);
  static constexpr int kDvFrags = (BK / 16) * (DV / 16);
  static constexpr int NDK = kDkFrags / kWarps, NDV = kDvFrags / kWarps;
  static_assert(kDkFrags % kWarps == 0 && kDvFrags % kWarps == 0, "dK/dV fragments split evenly over the warps");
};

// delta (maps,B,heads,nq) = dscale_m · rowsum(dO ∘ O_m); one warp per (b, h, i).
__global__ void delta_kernel(Problem p, BackwardIo io, float* delta) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;  // (b·heads + h)·nq + i
  const int lane = threadIdx.x % 32;
  const int64_t rows = int64_t(p.B) * p.heads * p.nq;
  if (row >= rows) return;
  const int i = int(row % p.nq), h = int(row / p.nq % p.heads), b = int(row / (int64_t(p.nq) * p.heads));
  const int dv = p.maps * p.d;
  const int64_t orow = ((int64_t(b) * p.Tq + p.q0 + i) * p.heads + h) * dv;
  for (int m = 0; m < p.maps; ++m) {
    const FBuf O = m == 0 ? io.O[0] : io.O[1];
    float s = 0.f;
    for (int c = lane; c < dv; c += 32) s += io.dO.ld(orow + c) * O.ld(orow + c);
    s = warp_sum(s);
    if (lane == 0) delta[m * rows + row] = io.dscale[m] * s;
  }
}

// grid (key tiles, kv heads, B); block kThreads. dq_acc null: no dQ here (the
// deterministic dq_pass computes it).
template <int D, int MAPS>
__global__ void __launch_bounds__(kThreads, 1) backward_kernel(Problem p, BackwardIo io, const float* delta,
                                                            float* dq_acc) {
  using C = Bwd<D, MAPS>;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  const auto [sK, sV, sQ, sdO, sdS, sS, sG, sL, sDelta] = step_tiles<C>(smem);
  bf16* sPc = reinterpret_cast<bf16*>(smem + C::kPc);
  float* sdQ = reinterpret_cast<float*>(smem + C::kdQ);

  const int warp = threadIdx.x / 32;
  const int j0 = blockIdx.x * C::BK, g = blockIdx.y, b = blockIdx.z;
  const int keys = min(C::BK, p.nk - j0);
  const int group = p.heads / p.kv;
  const float scale = 1.f / sqrtf(float(D));
  float ds[MAPS];
  for (int m = 0; m < MAPS; ++m) ds[m] = io.dscale[m];

  const int64_t krow0 = int64_t(b) * p.Tk + p.k0 + j0;  // this block's first key row in k, v, dk, dv
  load_key_side<C>(sK, sV, p, b, g, j0, keys);

  FragC acc_dk[C::NDK], acc_dv[C::NDV];  // fragment f = warp + t·kWarps of dK (all maps) and dV
#pragma unroll
  for (int t = 0; t < C::NDK; ++t) wmma::fill_fragment(acc_dk[t], 0.f);
#pragma unroll
  for (int t = 0; t < C::NDV; ++t) wmma::fill_fragment(acc_dv[t], 0.f);

  // Causal: query rows before j0 see none of these keys.
  const int first_i0 = p.causal ? (j0 / C::BQ) * C::BQ : 0;
  for (int h = g * group; h < (g + 1) * group; ++h)
    for (int i0 = first_i0; i0 < p.nq; i0 += C::BQ) {
      const int rows = min(C::BQ, p.nq - i0);
      __syncthreads();  // the previous step is done with the query-side region
      load_query_side<C>(sQ, sdO, p, io, b, h, i0, rows);
      load_row_stats<C>(sL, sDelta, p, io, delta, b, h, i0, rows);
      __syncthreads();
      scores_and_dp<C>(sQ, sK, sdO, sV, sS, sG);
      __syncthreads();
      probs_and_ds<C>(sS, sG, sL, sDelta, ds, i0, j0, rows, keys, p.causal, scale, sdS, sPc);
      __syncthreads();

      // dV (BK×DV) += Pcᵀ (BK×BQ) · dO (BQ×DV); Pc row-major is Pcᵀ column-major.
#pragma unroll
      for (int t = 0; t < C::NDV; ++t) {
        const int f = warp + t * kWarps, fi = f / (C::DV / 16), fj = f % (C::DV / 16);
#pragma unroll 1
        for (int kk = 0; kk < C::BQ; kk += 16) {
          FragAt at;
          FragB bo;
          wmma::load_matrix_sync(at, sPc + kk * C::LDP + fi * 16, C::LDP);
          wmma::load_matrix_sync(bo, sdO + kk * C::LDV + fj * 16, C::LDV);
          wmma::mma_sync(acc_dv[t], at, bo, acc_dv[t]);
        }
      }
      // dK_m (BK×D) += dS_mᵀ (BK×BQ) · Q_m (BQ×D); the scale comes in the epilogue.
      constexpr int kKF = (C::BK / 16) * (D / 16);
#pragma unroll
      for (int t = 0; t < C::NDK; ++t) {
        const int f = warp + t * kWarps, m = f / kKF, fi = (f % kKF) / (D / 16), fj = f % (D / 16);
#pragma unroll 1
        for (int kk = 0; kk < C::BQ; kk += 16) {
          FragAt at;
          FragB bq;
          wmma::load_matrix_sync(at, sdS + (m * C::BQ + kk) * C::LDP + fi * 16, C::LDP);
          wmma::load_matrix_sync(bq, sQ + (m * C::BQ + kk) * C::LDK + fj * 16, C::LDK);
          wmma::mma_sync(acc_dk[t], at, bq, acc_dk[t]);
        }
      }
      if (!dq_acc) continue;  // uniform: deterministic mode leaves dQ to dq_pass
      // dQ_m (BQ×D) = dS_m (BQ×BK) · K_m (BK×D), this step's part, to shared memory.
      constexpr int kQF = (C::BQ / 16) * (D / 16);
      for (int f = warp; f < MAPS * kQF; f += kWarps) {
        const int m = f / kQF, fi = (f % kQF) / (D / 16), fj = f % (D / 16);
        FragC acc;
        wmma::fill_fragment(acc, 0.f);
        dq_fragment<C>(acc, sdS, sK, m, fi, fj);
        wmma::store_matrix_sync(sdQ + (m * C::BQ + fi * 16) * C::LDQ32 + fj * 16, acc, C::LDQ32, wmma::mem_row_major);
      }
      __syncthreads();
      // dq_acc (B,nq,heads·maps,D) += scale · dQ_m for the valid rows.
      for (int e = threadIdx.x; e < MAPS * C::BQ * D; e += kThreads) {
        const int m = e / (C::BQ * D), r = e / D % C::BQ, c = e % D;
        if (r < rows)
          atomicAdd(dq_acc + ((int64_t(b) * p.nq + i0 + r) * p.heads * MAPS + h * MAPS + m) * D + c,
                    scale * sdQ[(m * C::BQ + r) * C::LDQ32 + c]);
      }
    }
  __syncthreads();  // the query-side region becomes the fp32 dK/dV tiles

  float* sdK32 = reinterpret_cast<float*>(smem + C::kdK32);
  float* sdV32 = reinterpret_cast<float*>(smem + C::kdV32);
  constexpr int kKF = (C::BK / 16) * (D / 16);
#pragma unroll
  for (int t = 0; t < C::NDK; ++t) {
    const int f = warp + t * kWarps, m = f / kKF, fi = (f % kKF) / (D / 16), fj = f % (D / 16);
    wmma::store_matrix_sync(sdK32 + (m * C::BK + fi * 16) * C::LDQ32 + fj * 16, acc_dk[t], C::LDQ32,
                            wmma::mem_row_major);
  }
#pragma unroll
  for (int t = 0; t < C::NDV; ++t) {
    const int f = warp + t * kWarps, fi = f / (C::DV / 16), fj = f % (C::DV / 16);
    wmma::store_matrix_sync(sdV32 + fi * 16 * C::LDV32 + fj * 16, acc_dv[t], C::LDV32, wmma::mem_row_major);
  }
  __syncthreads();
  // dk (B,Tk,kv·maps,D) and dv (B,Tk,kv,DV) rows of this tile: = or += .
  for (int e = threadIdx.x; e < MAPS * C::BK * D; e += kThreads) {
    const int m = e / (C::BK * D), r = e / D % C::BK, c = e % D;
    if (r >= keys) continue;
    const int64_t idx = ((krow0 + r) * p.kv * MAPS + g * MAPS + m) * D + c;
    float x = scale * sdK32[(m * C::BK + r) * C::LDQ32 + c];
    if (io.accumulate) x += __bfloat162float(io.dk[idx]);
    io.dk[idx] = __float2bfloat16(x);
  }
  for (int e = threadIdx.x; e < C::BK * C::DV; e += kThreads) {
    const int r = e / C::DV, c = e % C::DV;
    if (r >= keys) continue;
    const int64_t idx = ((krow0 + r) * p.kv + g) * C::DV + c;
    float x = sdV32[r * C::LDV32 + c];
    if (io.accumulate) x += __bfloat162float(io.dv[idx]);
    io.dv[idx] = __float2bfloat16(x);
  }
}

// dq rows [q0, q0+nq) of (B,Tq,heads·maps,d) = (or +=) acc (B,nq,heads·maps,d).
__global__ void dq_store_kernel(Problem p, const float* acc, bf16* dq, bool accumulate) {
  const int64_t width = int64_t(p.heads) * p.maps * p.d, n = int64_t(p.B) * p.nq * width;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = e % width, i = e / width % p.nq, b = e / (width * p.nq);
    const int64_t idx = (b * p.Tq + p.q0 + i) * width + w;
    float x = acc[e];
    if (accumulate) x += __bfloat162float(dq[idx]);
    dq[idx] = __float2bfloat16(x);
  }
}

template <int D, int MAPS>
void launch_backward(const Problem& p, const BackwardIo& io, const float* delta, float* dq_acc) {
  using C = Bwd<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(backward_kernel<D, MAPS>, C::kBytes, configured);
  const dim3 grid((p.nk + C::BK - 1) / C::BK, p.kv, p.B);
  DT_LAUNCH((backward_kernel<D, MAPS>), grid, kThreads, C::kBytes, p, io, delta, dq_acc);
}

}  // namespace

void backward(const Problem& p, const BackwardIo& io) {
  if (p.nq == 0) return;
  if (io.dO.bf16 && reinterpret_cast<uintptr_t>(io.dO.p) % 16 != 0)
    fail("flash attention backward: a bf16 dO must be 16-byte aligned");
  if ((p.d != 64 && p.d != 128) || (p.maps != 1 && p.maps != 2))
    fail("flash attention backward: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
  const int64_t rows = int64_t(p.B) * p.heads * p.nq;  // query rows of one map
  float* delta = static_cast<float*>(op_scratch(kScratchAttnDelta, sizeof(float) * p.maps * rows));
  const bool det = ops::deterministic();
  float* dq_acc = nullptr;
  const size_t acc_bytes = sizeof(float) * rows * p.maps * p.d;
  if (!det) {
    dq_acc = static_cast<float*>(op_scratch(kScratchAttnDqAcc, acc_bytes));
    CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, acc_bytes, cuda_stream()));
  }

  DT_LAUNCH(delta_kernel, blocks_for(rows, kWarps), kThreads, 0, p, io, delta);
  if (p.d == 64 && p.maps == 1) launch_backward<64, 1>(p, io, delta, dq_acc);
  else if (p.d == 128 && p.maps == 1) launch_backward<128, 1>(p, io, delta, dq_acc);
  else if (p.d == 64 && p.maps == 2) launch_backward<64, 2>(p, io, delta, dq_acc);
  else launch_backward<128, 2>(p, io, delta, dq_acc);
  if (det) return dq_pass(p, io, delta);
  const int64_t n = rows * p.maps * p.d;
  DT_LAUNCH(dq_store_kernel, int(std::min<int64_t>(blocks_for(n, kThreads), 4096)), kThreads, 0, p, dq_acc, io.dq,
            io.accumulate);
}

}  // namespace dt::cuda_ops::flash
