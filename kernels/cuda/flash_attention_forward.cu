// Flash attention forward (kernels/cuda/flash_attention.cuh): one block per
// (query tile, query head, sequence) walks the key tiles with an online
// softmax per map. Each K/V tile is loaded into shared memory once and feeds
// both maps of a differential head (one V tile, two P·V products).
//
// Per key tile, with tensor cores (wmma bf16 16×16×16, fp32 accumulation):
//   S_m = Q_m K_mᵀ            (fp32, shared memory)
//   P_m = exp(S_m·scale − max) (bf16), running max / sum per row, O_m rows rescaled
//   O_m += P_m V              (O_m accumulator in fp32 shared memory)
// The epilogue writes O_m / sum and lse = max + log(sum).
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops::flash {

namespace {

using namespace nvcuda;

// Tile sizes and the shared-memory layout of one (D, MAPS) instance. Rows are
// padded (+8 bf16, +4 f32) against bank conflicts; every section holds a
// multiple of 16 rows, so every wmma pointer stays 32-byte aligned.
template <int D, int MAPS>
struct Fwd {
  static constexpr int DV = MAPS * D;
  static constexpr int BQ = MAPS == 1 ? 64 : 32;       // query rows per block
  static constexpr int BK = MAPS * D == 256 ? 32 : 64;  // keys per tile
  static constexpr int LDQ = D + 8, LDV = DV + 8, LDP = BK + 8;  // bf16 row pitch
  static constexpr int LDS = BK + 4, LDO = DV + 4;              // f32 row pitch
  static constexpr size_t kQ = 0;                                         // bf16 [MAPS][BQ][LDQ]
  static constexpr size_t kK = kQ + sizeof(bf16) * MAPS * BQ * LDQ;       // bf16 [MAPS][BK][LDQ]
  static constexpr size_t kV = kK + sizeof(bf16) * MAPS * BK * LDQ;       // bf16 [BK][LDV]
  static constexpr size_t kS = kV + sizeof(bf16) * BK * LDV;              // f32  [MAPS][BQ][LDS]
  static constexpr size_t kP = kS + sizeof(float) * MAPS * BQ * LDS;      // bf16 [MAPS][BQ][LDP]
  static constexpr size_t kO = kP + sizeof(bf16) * MAPS * BQ * LDP;       // f32  [MAPS][BQ][LDO]
  static constexpr size_t kStats = kO + sizeof(float) * MAPS * BQ * LDO;  // f32 max [MAPS·BQ], sum [MAPS·BQ]
  static constexpr size_t kBytes = kStats + sizeof(float) * 2 * MAPS * BQ;
  static_assert(kBytes <= kMaxSmem, "forward tiles exceed sm_80 shared memory");
  static_assert(BK % 32 == 0 && BQ % 16 == 0, "a warp covers a key row in 32-column steps");
};

// grid (query tiles, heads, B); block kThreads.
template <int D, int MAPS>
__global__ void __launch_bounds__(kThreads, 1) forward_kernel(Problem p, ForwardOut o) {
  using C = Fwd<D, MAPS>;
  DT_DYNAMIC_SMEM(unsigned char, smem);
  bf16* sQ = reinterpret_cast<bf16*>(smem + C::kQ);
  bf16* sK = reinterpret_cast<bf16*>(smem + C::kK);
  bf16* sV = reinterpret_cast<bf16*>(smem + C::kV);
  float* sS = reinterpret_cast<float*>(smem + C::kS);
  bf16* sP = reinterpret_cast<bf16*>(smem + C::kP);
  float* sO = reinterpret_cast<float*>(smem + C::kO);
  float* sMax = reinterpret_cast<float*>(smem + C::kStats);
  float* sSum = sMax + MAPS * C::BQ;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i0 = (gridDim.x - 1 - blockIdx.x) * C::BQ;  // causal: the longest tiles start first
  const int h = blockIdx.y, b = blockIdx.z, g = h / (p.heads / p.kv);
  const int rows = min(C::BQ, p.nq - i0);
  const float scale = 1.f / sqrtf(float(D));

  // Row strides and the first row of this block's q (map m at +m·D), k (map m
  // at +m·D) and v.
  const int64_t q_ld = int64_t(p.heads) * MAPS * D, k_ld = int64_t(p.kv) * MAPS * D, v_ld = int64_t(p.kv) * C::DV;
  const bf16* q = p.q + ((int64_t(b) * p.Tq + p.q0 + i0) * p.heads * MAPS + h * MAPS) * D;
  const bf16* k = p.k + ((int64_t(b) * p.Tk + p.k0) * p.kv * MAPS + g * MAPS) * D;
  const bf16* v = p.v + ((int64_t(b) * p.Tk + p.k0) * p.kv + g) * C::DV;

  for (int m = 0; m < MAPS; ++m) load_tile<C::BQ, D>(sQ + m * C::BQ * C::LDQ, C::LDQ, q + m * D, q_ld, rows);
  for (int e = threadIdx.x; e < MAPS * C::BQ * C::LDO; e += kThreads) sO[e] = 0.f;
  for (int e = threadIdx.x; e < MAPS * C::BQ; e += kThreads) sMax[e] = -INFINITY, sSum[e] = 0.f;

  // Causal: keys after the tile's last row are invisible to all its rows.
  const int kend = p.causal ? min(i0 + C::BQ, p.nq) : p.nk;
  for (int j0 = 0; j0 < kend; j0 += C::BK) {
    const int keys = min(C::BK, p.nk - j0);
    __syncthreads();  // the previous tile's P·V is done with sK, sV, sP
    for (int m = 0; m < MAPS; ++m)
      load_tile<C::BK, D>(sK + m * C::BK * C::LDQ, C::LDQ, k + j0 * k_ld + m * D, k_ld, keys);
    load_tile<C::BK, C::DV>(sV, C::LDV, v + j0 * v_ld, v_ld, keys);
    __syncthreads();

    // S_m (BQ×BK) = Q_m (BQ×D) · K_mᵀ; K_m row-major is Kᵀ column-major.
    constexpr int kSF = (C::BQ / 16) * (C::BK / 16);
    for (int f = warp; f < MAPS * kSF; f += kWarps) {
      const int m = f / kSF, fi = (f % kSF) / (C::BK / 16), fj = f % (C::BK / 16);
      FragC acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        FragA a;
        FragBt bt;
        wmma::load_matrix_sync(a, sQ + (m * C::BQ + fi * 16) * C::LDQ + kk, C::LDQ);
        wmma::load_matrix_sync(bt, sK + (m * C::BK + fj * 16) * C::LDQ + kk, C::LDQ);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(sS + (m * C::BQ + fi * 16) * C::LDS + fj * 16, acc, C::LDS, wmma::mem_row_major);
    }
    __syncthreads();

    // Online softmax: one warp per row `row` = m·BQ + r (the same index into
    // sS, sP, sO, sMax, sSum); lane covers columns lane + 32·t.
    for (int row = warp; row < MAPS * C::BQ; row += kWarps) {
      const int i = i0 + row % C::BQ;
      float x[C::BK / 32];
      float tile_max = -INFINITY;
#pragma unroll
      for (int t = 0; t < C::BK / 32; ++t) {
        const int c = lane + 32 * t, j = j0 + c;
        const bool visible = j < p.nk && (!p.causal || j <= i);
        x[t] = visible ? sS[row * C::LDS + c] * scale : -INFINITY;
        tile_max = fmaxf(tile_max, x[t]);
      }
      tile_max = warp_max(tile_max);
      // Every row sees key 0 in the first tile, so new_max is finite from
      // then on; corr = 0 on the first tile (old max −inf, O still zero).
      const float old_max = sMax[row], new_max = fmaxf(old_max, tile_max);
      const float corr = __expf(old_max - new_max);
      float tile_sum = 0.f;
#pragma unroll
      for (int t = 0; t < C::BK / 32; ++t) {
        const float pr = __expf(x[t] - new_max);  // masked: exp(−inf) = 0
        tile_sum += pr;
        sP[row * C::LDP + lane + 32 * t] = __float2bfloat16(pr);
      }
      tile_sum = warp_sum(tile_sum);
      __syncwarp();  // every lane has read sMax[row] before lane 0 rewrites it
      if (lane == 0) {
        sMax[row] = new_max;
        sSum[row] = sSum[row] * corr + tile_sum;
      }
      for (int c = lane; c < C::DV; c += 32) sO[row * C::LDO + c] *= corr;
    }
    __syncthreads();

    // O_m (BQ×DV) += P_m (BQ×BK) · V (BK×DV): the one V tile feeds every map.
    constexpr int kOF = (C::BQ / 16) * (C::DV / 16);
    for (int f = warp; f < MAPS * kOF; f += kWarps) {
      const int m = f / kOF, fi = (f % kOF) / (C::DV / 16), fj = f % (C::DV / 16);
      float* out_frag = sO + (m * C::BQ + fi * 16) * C::LDO + fj * 16;
      FragC acc;
      wmma::load_matrix_sync(acc, out_frag, C::LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < C::BK; kk += 16) {
        FragA a;
        FragB bv;
        wmma::load_matrix_sync(a, sP + (m * C::BQ + fi * 16) * C::LDP + kk, C::LDP);
        wmma::load_matrix_sync(bv, sV + kk * C::LDV + fj * 16, C::LDV);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(out_frag, acc, C::LDO, wmma::mem_row_major);
    }
  }
  __syncthreads();

  // Epilogue: out[m] row = O_m / sum, lse[m] = max + log(sum), valid rows only.
  for (int row = warp; row < MAPS * C::BQ; row += kWarps) {
    const int m = row / C::BQ, r = row % C::BQ;
    if (r >= rows) continue;
    const FBuf out = m == 0 ? o.out[0] : o.out[1];  // (a select keeps the kernel parameters off the stack)
    float* lse = m == 0 ? o.lse[0] : o.lse[1];
    const float inv = 1.f / sSum[row];
    const int64_t orow = ((int64_t(b) * p.Tq + p.q0 + i0 + r) * p.heads + h) * C::DV;
    for (int c = lane; c < C::DV; c += 32) out.st(orow + c, sO[row * C::LDO + c] * inv);
    if (lane == 0) lse[(int64_t(b) * p.heads + h) * p.Tq + p.q0 + i0 + r] = sMax[row] + logf(sSum[row]);
  }
}

template <int D, int MAPS>
void launch_forward(const Problem& p, const ForwardOut& o) {
  using C = Fwd<D, MAPS>;
  static bool configured[kMaxDevices] = {};
  opt_in_smem(forward_kernel<D, MAPS>, C::kBytes, configured);
  const dim3 grid((p.nq + C::BQ - 1) / C::BQ, p.heads, p.B);
  DT_LAUNCH((forward_kernel<D, MAPS>), grid, kThreads, C::kBytes, p, o);
}

}  // namespace

void forward(const Problem& p, const ForwardOut& o) {
  if (p.nq == 0) return;
  if (p.d == 64 && p.maps == 1) return launch_forward<64, 1>(p, o);
  if (p.d == 128 && p.maps == 1) return launch_forward<128, 1>(p, o);
  if (p.d == 64 && p.maps == 2) return launch_forward<64, 2>(p, o);
  if (p.d == 128 && p.maps == 2) return launch_forward<128, 2>(p, o);
  fail("flash attention forward: head dim ", p.d, " with ", p.maps, " maps is not supported (d 64 or 128, maps 1 or 2)");
}

}  // namespace dt::cuda_ops::flash
