// The dQ pass of the flash backward (flash_attention_backward.cu runs it after
// the dK/dV kernel; CPU twin: the dq part of tiles::backward in
// kernels/cpu/attention_tile_engine.cpp), on mma.sync fragments.
//
// One block of 8 warps per (query tile, query head, sequence) keeps Q_m and dO
// of its rows in shared memory and walks the key tiles its rows can see
// (causal: up to its last row), K/V double-buffered by cp.async. Warp w works
// on map m = w / (8 / MAPS) and 16 query rows, as in the forward, and per key
// tile computes in registers
//   S_m = Q_m K_mᵀ,  G = dO Vᵀ,  dS_m = P_m ∘ (dscale_m G − Δ_m),  dQ_m += dS_m K_m
// with lse and Δ of its two fragment rows in registers. Each dq element has
// one writer and the key tiles are summed in ascending order: deterministic,
// no atomics, no memory beyond the inputs. The price is the recomputed S and G
// (and, for differential heads, G once per map).
#include "kernels/cuda/flash_attention_backward.cuh"

namespace dt::cuda_ops::flash {

namespace {

// Layout [Q][dO][K0][V0][K1][V1] (bf16, rows padded by 8); keys per tile 64, 32
// for differential d 128 (to fit two K/V buffers in sm_80's shared memory).
template <int D, int MAPS>
struct BwdDq {
  static constexpr int DV = MAPS * D;
  static constexpr int kGroups = kWarps / MAPS;
  static constexpr int BQ = 16 * kGroups;
  static constexpr int BK = DV == 256 ? 32 : 64;
  static constexpr bool kQInRegs = DV <= 128;
  static constexpr int LDK = D + 8, LDV = DV + 8;
  static constexpr int kQTile = MAPS * BQ * LDK, kOTile = BQ * LDV, kKTile = MAPS * BK * LDK, kVTile = BK * LDV;
  static constexpr int kBuf = kKTile + kVTile;
  static constexpr size_t kBytes = sizeof(bf16) * (kQTile + kOTile + 2 * kBuf);
  static_assert(kBytes <= kMaxSmem, "dQ pass tiles exceed sm_80 shared memory");
};

// grid (query tiles, query heads, B); block kThreads. dO is bf16 (io.dO, or its
// bf16 copy made by delta_kernel).
template <int D, int MAPS>
__global__ void __launch_bounds__(kThreads, 1) dq_kernel(Problem p, BackwardIo io, const bf16* dO, const float* delta) {
  using C = BwdDq<D, MAPS>;
  constexpr int BK = C::BK, DV = C::DV, LDK = C::LDK, LDV = C::LDV;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sO = sQ + C::kQTile;  // dO
  bf16* sKV = sO + C::kOTile;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int m = warp / C::kGroups, r0 = 16 * (warp % C::kGroups);
  const int i0 = (gridDim.x - 1 - blockIdx.x) * C::BQ;  // causal: the longest tiles start first
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (p.heads / p.kv);
  const int rows = min(C::BQ, p.nq - i0);
  const float scale = 1.f / sqrtf(float(D)), dscale = io.dscale[m];

  const int64_t qrow0 = int64_t(b) * p.Tq + p.q0 + i0;  // first query row in q, dO, dq
  const int64_t q_ld = int64_t(p.heads) * MAPS * D, k_ld = int64_t(p.kv) * MAPS * D, v_ld = int64_t(p.kv) * DV;
  const bf16* k = p.k + ((int64_t(b) * p.Tk + p.k0) * p.kv * MAPS + kvh * MAPS) * D;
  const bf16* v = p.v + ((int64_t(b) * p.Tk + p.k0) * p.kv + kvh) * DV;
  auto load_kv = [&](int buf, int j0) {
    bf16* sk = sKV + buf * C::kBuf;
    const int keys = min(BK, p.nk - j0);
    for (int mm = 0; mm < MAPS; ++mm) async_tile<BK, D, LDK>(sk + mm * BK * LDK, k + j0 * k_ld + mm * D, k_ld, keys);
    async_tile<BK, DV, LDV>(sk + C::kKTile, v + j0 * v_ld, v_ld, keys);
  };

  for (int mm = 0; mm < MAPS; ++mm)
    async_tile<C::BQ, D, LDK>(sQ + mm * C::BQ * LDK, p.q + (qrow0 * p.heads * MAPS + h * MAPS + mm) * D, q_ld, rows);
  async_tile<C::BQ, DV, LDV>(sO, dO + (qrow0 * p.heads + h) * DV, int64_t(p.heads) * DV, rows);
  load_kv(0, 0);
  ptx::cp_async_commit();

  // lse and Δ of this lane's rows g and g+8 (padded rows: 0, so their dS is 0).
  const int row_lo = i0 + r0;
  float lse[2], dl[2];
  for (int hh = 0; hh < 2; ++hh) {
    const int i = row_lo + g + 8 * hh;
    const float* l = m == 0 ? io.lse[0] : io.lse[1];
    lse[hh] = i < p.nq ? l[(int64_t(b) * p.heads + h) * p.Tq + p.q0 + i] : 0.f;
    dl[hh] = i < p.nq ? delta[delta_index(p, m, b, h, i)] : 0.f;
  }
  ptx::cp_async_wait<0>();
  __syncthreads();
  // This warp's A fragments of Q_m and dO (rows r0..r0+16).
  const AFrags<D, C::kQInRegs> q_frag(sQ + a_rows(lane, m * C::BQ + r0, 0, LDK));
  const AFrags<DV, false> o_frag(sO + a_rows(lane, r0, 0, LDV));

  float dq[D / 8][4];
#pragma unroll
  for (int c = 0; c < D / 8; ++c) dq[c][0] = dq[c][1] = dq[c][2] = dq[c][3] = 0.f;

  const int kend = p.causal ? min(p.nk, i0 + rows) : p.nk;
  const int ntiles = (kend + BK - 1) / BK;
  for (int it = 0; it < ntiles; ++it) {
    const int j0 = it * BK, buf = it % 2;
    if (it + 1 < ntiles) load_kv(buf ^ 1, j0 + BK);
    ptx::cp_async_commit();
    const bf16* sk = sKV + buf * C::kBuf + m * BK * LDK;
    const bf16* sv = sKV + buf * C::kBuf + C::kKTile;
    if (!(p.causal && j0 > row_lo + 15)) {  // else every key of the tile is after every row of this warp
      float s[BK / 8][4], gs[BK / 8][4];
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = gs[j][e] = 0.f;
      mma_a_bt<D, BK>(s, q_frag, sk, LDK, lane);    // S = Q_m K_mᵀ
      mma_a_bt<DV, BK>(gs, o_frag, sv, LDV, lane);  // G = dO Vᵀ
      // dS (in s), exactly 0 where masked.
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = j0 + j * 8 + 2 * t + e % 2, row = row_lo + g + 8 * (e / 2);
          const bool visible = key < p.nk && (!p.causal || key <= row);
          s[j][e] = p_and_ds(s[j][e], gs[j][e], lse[e / 2], dl[e / 2], dscale, scale, visible).ds;
        }
      mma_c_b<BK, D>(dq, s, sk, LDK, lane);  // dQ_m += dS K_m
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // the next tile has landed; every warp is done with this one
  }

  // dq (B,Tq,heads·maps,D) rows g, g+8 of this warp: = or += scale · dQ_m.
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int r = r0 + g + 8 * hh;
    if (r >= rows) continue;
    bf16* out = io.dq + ((qrow0 + r) * p.heads * MAPS + h * MAPS + m) * D;
#pragma unroll
    for (int c = 0; c < D / 8; ++c)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = c * 8 + 2 * t + e;
        float x = scale * dq[c][2 * hh + e];
        if (io.accumulate) x += __bfloat162float(out[col]);
        out[col] = __float2bfloat16(x);
      }
  }
}

template <int D, int MAPS>
void launch_dq(const Problem& p, const BackwardIo& io, const bf16* dO, const float* delta) {
  using C = BwdDq<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(dq_kernel<D, MAPS>, C::kBytes, configured);
  const dim3 grid((p.nq + C::BQ - 1) / C::BQ, p.heads, p.B);
  DT_LAUNCH((dq_kernel<D, MAPS>), grid, kThreads, C::kBytes, p, io, dO, delta);
}

}  // namespace

void dq_pass(const Problem& p, const BackwardIo& io, const bf16* dO, const float* delta) {
  if (p.d == 64 && p.maps == 1) return launch_dq<64, 1>(p, io, dO, delta);
  if (p.d == 128 && p.maps == 1) return launch_dq<128, 1>(p, io, dO, delta);
  if (p.d == 64 && p.maps == 2) return launch_dq<64, 2>(p, io, dO, delta);
  if (p.d == 128 && p.maps == 2) return launch_dq<128, 2>(p, io, dO, delta);
  fail("flash attention dQ pass: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
}

}  // namespace dt::cuda_ops::flash
