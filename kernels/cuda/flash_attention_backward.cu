// Flash attention backward (FlashAttention-2 structure on mma.sync fragments,
// kernels/cuda/ptx.cuh; the shared steps in flash_attention_backward.cuh; CPU
// twin: tiles::backward in kernels/cpu/attention_tile_engine.cpp).
//
// 1. delta_kernel: Δ_m[i] = dscale_m · (dO[i] · O_m[i]) (one warp per query
//    row), and a bf16 copy of dO when it is f32. Skipped when the caller
//    brings Δ (the differential combine's backward computes it on the way).
// 2. dkdv_kernel: one block per (key tile, kv head, sequence) owns dK_m and dV
//    of its keys in registers and walks every query head of the kv group and
//    every query tile that can see its keys (causal: the tiles at and after
//    it), the next query tile (Q, dO, lse, Δ) loading by cp.async while this
//    one computes. Warp w owns 16 keys of map m = w / (8 / MAPS): 128 keys per
//    block for standard attention, 64 (both maps) for differential. Per query
//    tile, in registers, as transposes (keys × queries):
//      Sᵀ_m = K_m Q_mᵀ,  Gᵀ = V dOᵀ,  Pᵀ_m = exp(Sᵀ_m·scale − lse_m),
//      dSᵀ_m = Pᵀ_m ∘ (dscale_m Gᵀ − Δ_m),
//      dV += (Σ_m dscale_m Pᵀ_m) dO,  dK_m += dSᵀ_m Q_m  (the scale in the epilogue).
//    Differential heads: the two warps of a key row split Gᵀ's sum over V's 2d
//    columns and dV's columns between them and swap the halves of Gᵀ and their
//    dscale_m Pᵀ_m through shared memory, so nothing is computed twice.
// 3. dq_pass (flash_attention_backward_dq.cu): dQ, one writer per element.
// No atomics anywhere: the result does not depend on the scheduling.
#include <algorithm>

#include "kernels/cuda/flash_attention_backward.cuh"

namespace dt::cuda_ops::flash {

namespace {

// Layout (bytes): K [MAPS][BKB][LDK], V [BKB][LDV], two query-step buffers
// {Q [MAPS][BQ][LDK], dO [BQ][LDV]} (bf16, rows padded by 8), the differential
// exchange [kWarps][16][LDX] f32, two stats buffers {lse, Δ}[MAPS][BQ] f32.
template <int D, int MAPS>
struct BwdKv {
  static constexpr int DV = MAPS * D;
  static constexpr int kGroups = kWarps / MAPS;
  static constexpr int BKB = 16 * kGroups;    // keys per block
  static constexpr int BQ = D == 128 ? 32 : 64;  // query rows per step
  static constexpr int LDK = D + 8, LDV = DV + 8, LDX = BQ + 4;
  static constexpr int kKTile = MAPS * BKB * LDK, kVTile = BKB * LDV;
  static constexpr int kQStep = MAPS * BQ * LDK, kStep = kQStep + BQ * LDV;  // bf16 elements
  static constexpr size_t kX = sizeof(bf16) * (kKTile + kVTile + 2 * kStep);
  static constexpr size_t kStats = kX + (MAPS == 2 ? sizeof(float) * kWarps * 16 * LDX : 0);
  static constexpr size_t kBytes = kStats + sizeof(float) * 2 * (2 * MAPS * BQ);
  static_assert(kBytes <= kMaxSmem, "backward tiles exceed sm_80 shared memory");
};

// delta (maps, B, heads, nq) = dscale_m · rowsum(dO ∘ O_m); one warp per (b, h, i).
// dO_bf16, when not null, receives dO's row rounded to bf16 (same layout as dO).
__global__ void delta_kernel(Problem p, BackwardIo io, float* delta, bf16* dO_bf16) {
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
  if (dO_bf16)
    for (int c = lane; c < dv; c += 32) dO_bf16[orow + c] = __float2bfloat16(io.dO.ld(orow + c));
}

// grid (key tiles, kv heads, B); block kThreads. dO bf16 (B,Tq,heads,DV).
template <int D, int MAPS>
__global__ void __launch_bounds__(kThreads, 1) dkdv_kernel(Problem p, BackwardIo io, const bf16* dO,
                                                          const float* delta) {
  using C = BwdKv<D, MAPS>;
  constexpr int BQ = C::BQ, BKB = C::BKB, DV = C::DV, LDK = C::LDK, LDV = C::LDV;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sK = reinterpret_cast<bf16*>(smem);
  bf16* sV = sK + C::kKTile;
  bf16* sSteps = sV + C::kVTile;
  float* sX = reinterpret_cast<float*>(smem + C::kX);
  float* sStats = reinterpret_cast<float*>(smem + C::kStats);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int m = warp / C::kGroups, kr0 = 16 * (warp % C::kGroups);  // this warp's map and first key (block-relative)
  const int c0 = MAPS == 2 ? m * D : 0;                              // this warp's dV columns [c0, c0 + D)
  const int j0 = blockIdx.x * BKB, kvh = blockIdx.y, b = blockIdx.z;
  const int keys = min(BKB, p.nk - j0), k_lo = j0 + kr0;
  const int group = p.heads / p.kv;
  const float scale = 1.f / sqrtf(float(D)), dscale = io.dscale[m];
  const int64_t q_ld = int64_t(p.heads) * MAPS * D, k_ld = int64_t(p.kv) * MAPS * D, v_ld = int64_t(p.kv) * DV;
  const int64_t krow0 = int64_t(b) * p.Tk + p.k0 + j0;  // this block's first key row in k, v, dk, dv

  for (int mm = 0; mm < MAPS; ++mm)
    async_tile<BKB, D, LDK>(sK + mm * BKB * LDK, p.k + (krow0 * p.kv * MAPS + kvh * MAPS + mm) * D, k_ld, keys);
  async_tile<BKB, DV, LDV>(sV, p.v + (krow0 * p.kv + kvh) * DV, v_ld, keys);

  // Steps s = (query head h, query tile i0): every head of the group, the tiles that see these keys.
  const int first_i0 = p.causal ? (j0 / BQ) * BQ : 0;
  const int qtiles = (p.nq - first_i0 + BQ - 1) / BQ, nsteps = group * qtiles;
  auto head_of = [&](int s) { return kvh * group + s / qtiles; };
  auto i0_of = [&](int s) { return first_i0 + (s % qtiles) * BQ; };
  auto load_step = [&](int buf, int s) {
    const int h = head_of(s), i0 = i0_of(s), rows = min(BQ, p.nq - i0);
    const int64_t qrow0 = int64_t(b) * p.Tq + p.q0 + i0;
    bf16* sq = sSteps + buf * C::kStep;
    for (int mm = 0; mm < MAPS; ++mm)
      async_tile<BQ, D, LDK>(sq + mm * BQ * LDK, p.q + (qrow0 * p.heads * MAPS + h * MAPS + mm) * D, q_ld, rows);
    async_tile<BQ, DV, LDV>(sq + C::kQStep, dO + (qrow0 * p.heads + h) * DV, int64_t(p.heads) * DV, rows);
    // lse and Δ by plain loads: visible after the step's closing barrier. Padded rows: 0.
    float* st = sStats + buf * 2 * MAPS * BQ;
    for (int e = threadIdx.x; e < MAPS * BQ; e += kThreads) {
      const int mm = e / BQ, r = e % BQ, i = i0 + r;
      const float* lse = mm == 0 ? io.lse[0] : io.lse[1];
      st[2 * mm * BQ + r] = i < p.nq ? lse[(int64_t(b) * p.heads + h) * p.Tq + p.q0 + i] : 0.f;
      st[(2 * mm + 1) * BQ + r] = i < p.nq ? delta[delta_index(p, mm, b, h, i)] : 0.f;
    }
  };
  if (nsteps > 0) load_step(0, 0);
  ptx::cp_async_commit();
  ptx::cp_async_wait<0>();
  __syncthreads();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int c = 0; c < D / 8; ++c)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[c][e] = dv[c][e] = 0.f;

  for (int s = 0; s < nsteps; ++s) {
    const int buf = s % 2, i0 = i0_of(s);
    if (s + 1 < nsteps) load_step(buf ^ 1, s + 1);
    ptx::cp_async_commit();
    const bf16* sq = sSteps + buf * C::kStep;
    const bf16* so = sq + C::kQStep;
    const float* st = sStats + buf * 2 * MAPS * BQ + 2 * m * BQ;  // lse at st[r], Δ at st[BQ + r]
    // Every query of the step is before every key of this warp (and of its partner).
    const bool skip = p.causal && i0 + BQ - 1 < k_lo;
    float sT[BQ / 8][4], gT[BQ / 8][4];  // Sᵀ then dSᵀ; Gᵀ then dscale·Pᵀ
#pragma unroll
    for (int j = 0; j < BQ / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) sT[j][e] = gT[j][e] = 0.f;
    if (!skip) {
      // Sᵀ_m = K_m Q_mᵀ and Gᵀ = V dOᵀ (this warp's half of V's columns for differential heads).
      // (The k loops unrolled by 2: fully unrolled, d 128 spills.)
      const AFrags<D, false> k_frag(sK + a_rows(lane, m * BKB + kr0, 0, LDK)), v_frag(sV + a_rows(lane, kr0, c0, LDV));
      mma_a_bt<D, BQ, 2>(sT, k_frag, sq + m * BQ * LDK, LDK, lane);
      mma_a_bt<D, BQ, 2>(gT, v_frag, so + c0, LDV, lane);
    }
    // This warp's 16×BQ fragment tile x to the exchange and its partner's added in
    // map order (both warps then hold the same sum). Whole block: barriers inside.
    // first: the step's barrier already ended every read of the exchange.
    auto swap_halves = [&](float (&x)[BQ / 8][4], bool first) {
      if constexpr (MAPS == 2) {
        float* mine = sX + warp * 16 * C::LDX;
        const float* other = sX + (warp ^ C::kGroups) * 16 * C::LDX;
        if (!first) __syncthreads();  // the exchange's previous readers are done
        if (!skip)
#pragma unroll
          for (int j = 0; j < BQ / 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) mine[(g + 8 * (e / 2)) * C::LDX + j * 8 + 2 * t + e % 2] = x[j][e];
        __syncthreads();
        if (!skip)
#pragma unroll
          for (int j = 0; j < BQ / 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const float y = other[(g + 8 * (e / 2)) * C::LDX + j * 8 + 2 * t + e % 2];
              x[j][e] = m == 0 ? x[j][e] + y : y + x[j][e];
            }
      }
    };
    swap_halves(gT, true);  // Gᵀ = V[:, :d] dO[:, :d]ᵀ + V[:, d:] dO[:, d:]ᵀ
    if (!skip)
#pragma unroll
      for (int j = 0; j < BQ / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = j * 8 + 2 * t + e % 2, i = i0 + r, key = k_lo + g + 8 * (e / 2);
          const bool visible = i < p.nq && key < p.nk && (!p.causal || key <= i);
          const PdS x = p_and_ds(sT[j][e], gT[j][e], st[r], st[BQ + r], dscale, scale, visible);
          sT[j][e] = x.ds;
          gT[j][e] = dscale * x.p;
        }
    swap_halves(gT, false);  // Σ_m dscale_m Pᵀ_m
    if (!skip) {
      mma_c_b<BQ, D>(dv, gT, so + c0, LDV, lane);           // dV[:, c0:c0+D) += Pcᵀ dO[:, c0:c0+D)
      mma_c_b<BQ, D>(dk, sT, sq + m * BQ * LDK, LDK, lane);  // dK_m += dSᵀ_m Q_m
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // the next step has landed; every warp is done with this one
  }

  // dk (B,Tk,kv·maps,D) and dv (B,Tk,kv,DV) rows of this warp's keys: = or += .
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int kr = kr0 + g + 8 * hh;
    if (kr >= keys) continue;
    bf16* dkr = io.dk + ((krow0 + kr) * p.kv * MAPS + kvh * MAPS + m) * D;
    bf16* dvr = io.dv + ((krow0 + kr) * p.kv + kvh) * DV + c0;
#pragma unroll
    for (int c = 0; c < D / 8; ++c)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = c * 8 + 2 * t + e;
        float xk = scale * dk[c][2 * hh + e], xv = dv[c][2 * hh + e];
        if (io.accumulate) xk += __bfloat162float(dkr[col]), xv += __bfloat162float(dvr[col]);
        dkr[col] = __float2bfloat16(xk);
        dvr[col] = __float2bfloat16(xv);
      }
  }
}

template <int D, int MAPS>
void launch_dkdv(const Problem& p, const BackwardIo& io, const bf16* dO, const float* delta) {
  using C = BwdKv<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(dkdv_kernel<D, MAPS>, C::kBytes, configured);
  const dim3 grid((p.nk + C::BKB - 1) / C::BKB, p.kv, p.B);
  DT_LAUNCH((dkdv_kernel<D, MAPS>), grid, kThreads, C::kBytes, p, io, dO, delta);
}

}  // namespace

void backward(const Problem& p, const BackwardIo& io) {
  if (p.nq == 0) return;
  if (io.dO.bf16 && reinterpret_cast<uintptr_t>(io.dO.p) % 16 != 0)
    fail("flash attention backward: a bf16 dO must be 16-byte aligned");
  if ((p.d != 64 && p.d != 128) || (p.maps != 1 && p.maps != 2))
    fail("flash attention backward: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
  const int64_t rows = int64_t(p.B) * p.heads * p.nq;  // query rows of one map
  const float* delta = io.delta;
  const bf16* dO = static_cast<const bf16*>(io.dO.p);
  if (!delta || !io.dO.bf16) {
    DT_CHECK(!io.delta, "flash attention backward: a precomputed Δ needs a bf16 dO");
    float* d = static_cast<float*>(op_scratch(kScratchAttnDelta, sizeof(float) * p.maps * rows));
    bf16* copy = nullptr;
    if (!io.dO.bf16) {  // the kernels' tiles are bf16: dO rounded once, as the tensor cores would see it
      copy = static_cast<bf16*>(op_scratch(kScratchAttnDoBf16, sizeof(bf16) * p.B * p.Tq * p.heads * p.maps * p.d));
      dO = copy;
    }
    DT_LAUNCH(delta_kernel, blocks_for(rows, kWarps), kThreads, 0, p, io, d, copy);
    delta = d;
  }
  if (p.d == 64 && p.maps == 1) launch_dkdv<64, 1>(p, io, dO, delta);
  else if (p.d == 128 && p.maps == 1) launch_dkdv<128, 1>(p, io, dO, delta);
  else if (p.d == 64 && p.maps == 2) launch_dkdv<64, 2>(p, io, dO, delta);
  else launch_dkdv<128, 2>(p, io, dO, delta);
  dq_pass(p, io, dO, delta);
}

}  // namespace dt::cuda_ops::flash
