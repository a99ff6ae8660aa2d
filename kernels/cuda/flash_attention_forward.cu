// Flash attention forward (kernels/cuda/flash_attention.cuh), FlashAttention-2
// structure on mma.sync m16n8k16 fragments (kernels/cuda/ptx.cuh), whose
// register layout the PTX ISA documents, so S, P and O never leave registers.
//
// One block of 8 warps per (query tile, query head, sequence). Warp w works on
// map m = w / (8 / MAPS) and query rows 16·(w % (8 / MAPS)) .. +16 of the tile:
// standard attention (MAPS 1) takes 128 query rows per block, differential
// attention (MAPS 2) 64 rows of both maps, so the two maps of a row live in
// two warps that share every V tile. Per 64-key tile, double-buffered in
// shared memory by cp.async (the next tile loads while this one computes):
//   S = Q_m K_mᵀ          (16×64 per warp, fp32 registers; Q fragments held all along)
//   online softmax         (running max and per-lane partial sums for rows g, g+8)
//   O_m += P V             (P re-packed from S's registers as the A fragment)
// Causal tiles past a warp's last row are skipped; GQA by indexing.
//
// The differential forward is this one launch: with CombineOut the map-2 warps
// hand their normalised O2 rows to the map-1 warps through shared memory after
// the loop, and those write out = RMSNorm(o1 − λ·o2; g)·(1 − λ_init), rstd, and
// both maps' O and lse for the backward; λ is computed in the kernel.
//
// Registers and shared memory (ptxas -v, sm_90, for d 64 / 128): see bench/bench_cuda.cu's header.
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops::flash {

namespace {

// Tile sizes and the shared-memory layout of one (D, MAPS) instance. Rows are
// padded by 8 bf16 (16 bytes), so the 8 rows an ldmatrix reads fall in
// distinct bank groups. Layout: [Q][K][V], one buffer each: as in
// FlashAttention-2, V(t) loads while S = QKᵀ runs and K(t+1) while O += PV
// runs. After the loop the combine's O2 rows (f32) reuse the area. Q's
// fragments stay in registers except where the O accumulators (16 × 2d fp32
// per warp: 128 registers at d 128) leave no room.
template <int D, int MAPS>
struct Fwd {
  static constexpr int DV = MAPS * D;
  static constexpr int kGroups = kWarps / MAPS;  // 16-row groups per map
  static constexpr int BQ = 16 * kGroups;        // query rows per block
  static constexpr int BK = 64;                  // keys per tile
  static constexpr bool kQInRegs = DV <= 128;
  static constexpr int LDK = D + 8, LDV = DV + 8, LDX = DV + 4;
  static constexpr int kQTile = MAPS * BQ * LDK, kKTile = MAPS * BK * LDK, kVTile = BK * LDV;  // bf16 elements
  static constexpr size_t kBytes = sizeof(bf16) * (kQTile + kKTile + kVTile);
  static_assert(sizeof(float) * BQ * LDX <= kBytes, "the combine's rows do not fit");
  static_assert(kBytes <= kMaxSmem, "forward tiles exceed sm_80 shared memory");
};

// x as it reads back from the buffer b (rounded to bf16 when b holds bf16).
__device__ __forceinline__ float as_stored(const FBuf& b, float x) {
  return b.bf16 ? __bfloat162float(__float2bfloat16(x)) : x;
}

// λ of the combine, computed by one warp (double sums, as lambda_kernel).
__device__ float warp_lambda(const LambdaVecs& l) {
  double a = 0.0, b = 0.0;
  for (int j = threadIdx.x % 32; j < l.d; j += 32) {
    a += double(l.q1.ld(j)) * l.k1.ld(j);
    b += double(l.q2.ld(j)) * l.k2.ld(j);
  }
  a = warp_sum(a);
  b = warp_sum(b);
  return float(exp(a) - exp(b) + l.lambda_init);
}

// grid (query tiles, heads, B); block kThreads.
template <int D, int MAPS, bool COMBINE>
__global__ void __launch_bounds__(kThreads, 1) forward_kernel(Problem p, ForwardOut o, CombineOut cb) {
  using C = Fwd<D, MAPS>;
  constexpr int BK = C::BK, DV = C::DV, LDK = C::LDK, LDV = C::LDV;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + C::kQTile;
  bf16* sV = sK + C::kKTile;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;        // fragment row group and thread in group
  const int m = warp / C::kGroups, r0 = 16 * (warp % C::kGroups);  // this warp's map and first row
  const int i0 = (gridDim.x - 1 - blockIdx.x) * C::BQ;  // causal: the longest tiles start first
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (p.heads / p.kv);
  const int rows = min(C::BQ, p.nq - i0);
  const float scale = 1.f / sqrtf(float(D));

  const int64_t q_ld = int64_t(p.heads) * MAPS * D, k_ld = int64_t(p.kv) * MAPS * D, v_ld = int64_t(p.kv) * DV;
  const bf16* q = p.q + ((int64_t(b) * p.Tq + p.q0 + i0) * p.heads * MAPS + h * MAPS) * D;
  const bf16* k = p.k + ((int64_t(b) * p.Tk + p.k0) * p.kv * MAPS + kvh * MAPS) * D;
  const bf16* v = p.v + ((int64_t(b) * p.Tk + p.k0) * p.kv + kvh) * DV;
  auto load_k = [&](int j0) {
    for (int mm = 0; mm < MAPS; ++mm)
      async_tile<BK, D, LDK>(sK + mm * BK * LDK, k + j0 * k_ld + mm * D, k_ld, min(BK, p.nk - j0));
    ptx::cp_async_commit();
  };
  auto load_v = [&](int j0) {
    async_tile<BK, DV, LDV>(sV, v + j0 * v_ld, v_ld, min(BK, p.nk - j0));
    ptx::cp_async_commit();
  };

  // Prologue: Q and the first K tile.
  for (int mm = 0; mm < MAPS; ++mm) async_tile<C::BQ, D, LDK>(sQ + mm * C::BQ * LDK, q + mm * D, q_ld, rows);
  load_k(0);
  ptx::cp_async_wait<0>();
  __syncthreads();
  // This warp's A fragments of Q_m (rows r0..r0+16).
  const AFrags<D, C::kQInRegs> q_frag(sQ + a_rows(lane, m * C::BQ + r0, 0, LDK));

  float o_acc[DV / 8][4];
#pragma unroll
  for (int c = 0; c < DV / 8; ++c) o_acc[c][0] = o_acc[c][1] = o_acc[c][2] = o_acc[c][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};  // rows g, g+8; sums per lane
  const int row_lo = i0 + r0;  // this warp's first query row (problem-relative)

  // Causal: keys after the tile's last row are invisible to all its rows.
  const int kend = p.causal ? min(i0 + C::BQ, p.nq) : p.nk;
  const int ntiles = (kend + BK - 1) / BK;
  for (int it = 0; it < ntiles; ++it) {
    const int j0 = it * BK;
    load_v(j0);  // lands while S = QKᵀ runs
    // Every key of this tile is after every row of this warp: nothing to add.
    const bool skip = p.causal && j0 > row_lo + 15;
    float s[BK / 8][4];
    float corr[2] = {1.f, 1.f};
    if (!skip) {
      const bf16* sk = sK + m * BK * LDK;
#pragma unroll
      for (int j = 0; j < BK / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
      mma_a_bt<D, BK>(s, q_frag, sk, LDK, lane);  // S = Q Kᵀ
      // Masked (invisible) keys are −inf; a tile entirely visible to the warp skips the test.
      const bool full = j0 + BK <= p.nk && (!p.causal || j0 + BK - 1 <= row_lo);
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = j0 + j * 8 + 2 * t + e % 2, row = row_lo + g + 8 * (e / 2);
          const bool visible = full || (key < p.nk && (!p.causal || key <= row));
          s[j][e] = visible ? s[j][e] * scale : -INFINITY;
          tile_max[e / 2] = fmaxf(tile_max[e / 2], s[j][e]);
        }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        // Every row sees key 0 in the first tile, so the max is finite from then
        // on; corr = 0 on the first tile (old max −inf, O still zero).
        const float new_max = fmaxf(row_max[hh], quad_max(tile_max[hh]));
        corr[hh] = __expf(row_max[hh] - new_max);
        row_max[hh] = new_max;
        row_sum[hh] *= corr[hh];
      }
#pragma unroll
      for (int j = 0; j < BK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = __expf(s[j][e] - row_max[e / 2]);  // masked: exp(−inf) = 0
          row_sum[e / 2] += s[j][e];
        }
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // V has landed; every warp is done with K
    if (it + 1 < ntiles) load_k(j0 + BK);  // lands while O += PV runs
    if (!skip) {
#pragma unroll
      for (int c = 0; c < DV / 8; ++c) {
        o_acc[c][0] *= corr[0], o_acc[c][1] *= corr[0];
        o_acc[c][2] *= corr[1], o_acc[c][3] *= corr[1];
      }
      mma_c_b<BK, DV>(o_acc, s, sV, LDV, lane);  // O += P·V
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // the next K has landed; every warp is done with V
  }

  // Epilogue: O / sum and lse = max + log(sum) for rows g and g+8 of the warp.
  float inv[2], lse[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const float sum = quad_sum(row_sum[hh]);
    inv[hh] = 1.f / sum;
    lse[hh] = row_max[hh] + logf(sum);
  }
  const FBuf out = m == 0 ? o.out[0] : o.out[1];  // (a select keeps the kernel parameters off the stack)
  float* lse_out = m == 0 ? o.lse[0] : o.lse[1];
  auto out_row = [&](int r) { return ((int64_t(b) * p.Tq + p.q0 + i0 + r) * p.heads + h) * DV; };
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int r = r0 + g + 8 * hh;
    if (r >= rows) continue;
    const int64_t orow = out_row(r);
#pragma unroll
    for (int c = 0; c < DV / 8; ++c) {
      out.st(orow + c * 8 + 2 * t, o_acc[c][2 * hh] * inv[hh]);
      out.st(orow + c * 8 + 2 * t + 1, o_acc[c][2 * hh + 1] * inv[hh]);
    }
    if (t == 0) lse_out[(int64_t(b) * p.heads + h) * p.Tq + p.q0 + i0 + r] = lse[hh];
  }
  if constexpr (COMBINE) {
    // Map 2's normalised rows to shared memory (f32, pitch LDX); map 1's warps combine.
    // y = o1 − λ·o2 is formed from o1, o2 as stored for the backward (rounded to
    // the cache's dtype), so the backward differentiates the function computed here.
    float* sx = reinterpret_cast<float*>(smem);
    if (m == 1) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int c = 0; c < DV / 8; ++c) {
          float* x = sx + (r0 + g + 8 * hh) * C::LDX + c * 8 + 2 * t;
          x[0] = as_stored(o.out[1], o_acc[c][2 * hh] * inv[hh]);
          x[1] = as_stored(o.out[1], o_acc[c][2 * hh + 1] * inv[hh]);
        }
    }
    __syncthreads();
    if (m == 0) {
      const float lambda = warp_lambda(cb.lam), post = 1.f - cb.lam.lambda_init;
      float ss[2] = {0.f, 0.f};
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int c = 0; c < DV / 8; ++c) {
          const float* x = sx + (r0 + g + 8 * hh) * C::LDX + c * 8 + 2 * t;
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float y = as_stored(o.out[0], o_acc[c][2 * hh + e] * inv[hh]) - lambda * x[e];
            o_acc[c][2 * hh + e] = y;  // o_acc now holds y = o1 − λ·o2
            ss[hh] += y * y;
          }
        }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const float rstd = 1.f / sqrtf(quad_sum(ss[hh]) / float(DV) + cb.eps);
        const int r = r0 + g + 8 * hh;
        if (r >= rows) continue;
        const int64_t orow = out_row(r);
#pragma unroll
        for (int c = 0; c < DV / 8; ++c)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = c * 8 + 2 * t + e;
            cb.out.st(orow + col, o_acc[c][2 * hh + e] * rstd * cb.g.ld(col) * post);
          }
        if (t == 0) cb.rstd[orow / DV] = rstd;
      }
    }
  }
}

template <int D, int MAPS, bool COMBINE>
void launch_forward(const Problem& p, const ForwardOut& o, const CombineOut& cb) {
  using C = Fwd<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(forward_kernel<D, MAPS, COMBINE>, C::kBytes, configured);
  const dim3 grid((p.nq + C::BQ - 1) / C::BQ, p.heads, p.B);
  DT_LAUNCH((forward_kernel<D, MAPS, COMBINE>), grid, kThreads, C::kBytes, p, o, cb);
}

}  // namespace

void forward(const Problem& p, const ForwardOut& o, const CombineOut* combine) {
  if (p.nq == 0) return;
  if (combine) {
    if (p.maps != 2 || !p.causal || p.q0 != 0 || p.k0 != 0 || p.nq != p.Tq)
      fail("flash attention forward: the fused combine needs the whole causal differential problem");
    if (p.d == 64) return launch_forward<64, 2, true>(p, o, *combine);
    if (p.d == 128) return launch_forward<128, 2, true>(p, o, *combine);
  }
  const CombineOut none{};
  if (p.d == 64 && p.maps == 1) return launch_forward<64, 1, false>(p, o, none);
  if (p.d == 128 && p.maps == 1) return launch_forward<128, 1, false>(p, o, none);
  if (p.d == 64 && p.maps == 2) return launch_forward<64, 2, false>(p, o, none);
  if (p.d == 128 && p.maps == 2) return launch_forward<128, 2, false>(p, o, none);
  fail("flash attention forward: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
}

}  // namespace dt::cuda_ops::flash
