// The flash-style attention kernel family shared by standard attention
// (maps = 1, dv = d) and differential attention (maps = 2, dv = 2d), forward
// (flash_attention_forward.cu) and backward (flash_attention_backward.cu), and
// the ops built on it (attention.cu, diff_attention.cu).
//
// Layouts (row-major): q (B,Tq,heads·maps,d), k (B,Tk,kv·maps,d), v (B,Tk,kv,dv);
// map m of query head h is sub-head h·maps+m, and reads key sub-head g·maps+m
// and value head g = h / (heads/kv). Outputs out[m], O[m], dO (B,Tq,heads,dv);
// lse[m] (B,heads,Tq), natural log, F32. Scale 1/sqrt(d).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"  // warp_sum, warp_max, block_sum
#include "kernels/cuda/ptx.cuh"

namespace dt::cuda_ops::flash {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Largest dynamic shared memory one block may opt into on sm_80 (163 KB).
constexpr size_t kMaxSmem = 166912;

// One attention problem: query rows [q0, q0+nq) of q against key rows
// [k0, k0+nk) of k and v. causal: key row k0+j is visible to query row q0+i
// when j ≤ i (the two ranges are the same positions, nq == nk); otherwise
// every key of the range is visible. Row indices i, j below are block-relative.
struct Problem {
  int B, Tq, Tk, heads, kv, d, maps;
  int q0, nq, k0, nk;
  bool causal;
  const bf16* q;
  const bf16* k;
  const bf16* v;
};

// out[m] rows [q0, q0+nq) overwritten with the normalised output of map m;
// lse[m] likewise.
struct ForwardOut {
  FBuf out[2];
  float* lse[2];
};

// λ = exp(q1·k1) − exp(q2·k2) + λ_init from the four (d) vectors.
struct LambdaVecs {
  FBuf q1, k1, q2, k2;
  int d;
  float lambda_init;
};

// The differential forward's epilogue, fused into the flash kernel (maps 2):
// out (B,T,H,2d) = RMSNorm(o1 − λ·o2; g (2d))·(1 − λ_init), rstd (B,T,H) its
// statistics, with λ computed in the kernel from lam.
struct CombineOut {
  LambdaVecs lam;
  FBuf g;
  FBuf out;
  float* rstd;
  float eps;
};

// Map m receives the output gradient dscale[m]·dO. dq, dk, dv are written for
// this problem's rows: overwritten, or added to when accumulate.
struct BackwardIo {
  FBuf dO;
  FBuf O[2];
  const float* lse[2];
  const float* dscale;  // device, maps floats (a device value so λ never visits the host)
  bf16* dq;
  bf16* dk;
  bf16* dv;
  bool accumulate;
  // Δ_m[i] = dscale_m·(dO[i]·O_m[i]) (maps, B, heads, nq) when the caller has it
  // (needs a bf16 dO); null: the backward computes it.
  const float* delta;
};

// One launch. With combine (maps 2, one causal problem over the whole
// sequence) the kernel also writes the differential output and its rstd.
void forward(const Problem& p, const ForwardOut& o, const CombineOut* combine = nullptr);
// dK/dV and dQ from two kernels that each own their outputs (no atomics,
// flash_attention_backward.cu and _dq.cu), after Δ unless io.delta has it.
void backward(const Problem& p, const BackwardIo& io);

// Device-resident scalars of the attention ops, so the differential ops never
// synchronise with the host. Every op writes the fields it reads before
// reading them, in stream order.
struct DeviceScalars {
  double dlambda;   // d loss/dλ, accumulated by the differential combine backward
  float lambda;     // λ of the current layer
  float dscale[2];  // per-map output-gradient scale of the flash backward
};

// The attention ops' device scalars live in the shared op scratch
// (kernels/cuda/cuda_reduce.cuh), grown only when a larger size is asked.
inline DeviceScalars* device_scalars() {
  return static_cast<DeviceScalars*>(op_scratch(kScratchAttnScalars, sizeof(DeviceScalars)));
}

// s->lambda = λ of lam and s->dscale = {1, −λ}, computed by a kernel on the
// compute stream (kernels/cuda/diff_attention.cu): nothing visits the host.
void store_lambda(const ops::DiffLambda& lam, DeviceScalars* s, const char* op);

// cudaFuncSetAttribute applies to the current device only, so each kernel
// instance opts into its dynamic shared memory above 48 KB once per device;
// `done` is that instance's table.
// A device with less (sm_86, sm_89, sm_120: 99–101 KB) gets a one-line error
// naming both sizes instead of the runtime's "invalid argument".
template <class Kernel>
void opt_in_smem(Kernel* kernel, size_t bytes, bool (&done)[kMaxDevices]) {
  const int dev = current_device();
  if (done[dev]) return;
  int limit = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (bytes > size_t(limit))
    fail("flash attention: a kernel needs ", bytes, " bytes of shared memory per block, device ", dev,
         " allows ", limit, " (the kernels are tiled for sm_80/sm_90: A100, H100, H200)");
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  done[dev] = true;
}

// Checks shapes, dtypes (q, k, v BF16) and the block range, and fails with a
// clear message for what the kernels do not support (d ∉ {64,128}, dv ≠ maps·d).
inline Problem problem_of(int maps, const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttnBlock& blk,
                          const char* op) {
  require_dtype(q, DType::BF16, op, "q");
  require_dtype(k, DType::BF16, op, "k");
  require_dtype(v, DType::BF16, op, "v");
  DT_CHECK(maps == 1 || maps == 2, op, ": maps must be 1 or 2");
  DT_CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, op, " expects (B,T,heads,dim) tensors");
  DT_CHECK(q.dim(2) % maps == 0 && k.dim(2) % maps == 0, op, ": q ", q.shape_str(), " k ", k.shape_str());
  Problem p{};
  p.B = int(q.dim(0)), p.Tq = int(q.dim(1)), p.Tk = int(k.dim(1));
  p.heads = int(q.dim(2)) / maps, p.kv = int(k.dim(2)) / maps, p.d = int(q.dim(3)), p.maps = maps;
  DT_CHECK(k.dim(0) == p.B && v.dim(0) == p.B && v.dim(1) == p.Tk && k.dim(3) == p.d && v.dim(2) == p.kv, op,
           ": q ", q.shape_str(), " k ", k.shape_str(), " v ", v.shape_str());
  DT_CHECK(p.kv > 0 && p.heads % p.kv == 0, op, ": query heads ", p.heads, " not a multiple of kv heads ", p.kv);
  if (p.d != 64 && p.d != 128)
    fail(op, ": head dim ", p.d, " is not supported by the CUDA attention kernels (use head_dim 64 or 128)");
  if (v.dim(3) != int64_t(maps) * p.d)
    fail(op, ": v head dim ", v.dim(3), " must be ", maps, "·d = ", maps * p.d, " on CUDA");
  p.q0 = blk.q0, p.nq = blk.nq, p.k0 = blk.k0, p.nk = blk.nk, p.causal = blk.causal;
  DT_CHECK(p.q0 >= 0 && p.nq >= 0 && p.q0 + p.nq <= p.Tq && p.k0 >= 0 && p.nk > 0 && p.k0 + p.nk <= p.Tk, op,
           ": block rows q [", p.q0, ",", p.q0 + p.nq, ") k [", p.k0, ",", p.k0 + p.nk, ") out of range");
  DT_CHECK(!p.causal || p.nq == p.nk, op, ": a causal block pairs equal query and key ranges");
  // The tile loaders read 16-byte chunks.
  for (const Tensor* t : {&q, &k, &v})
    if (reinterpret_cast<uintptr_t>(t->ptr) % 16 != 0) fail(op, ": q, k and v must be 16-byte aligned on CUDA");
  p.q = static_cast<const bf16*>(q.ptr);
  p.k = static_cast<const bf16*>(k.ptr);
  p.v = static_cast<const bf16*>(v.ptr);
  return p;
}

// ---- device helpers ------------------------------------------------------------

// Shared tile (ROWS×COLS bf16, pitch LD) = global rows g + r·stride, rows
// r ≥ nvalid zero-filled (a zero row never turns a masked 0·x into NaN);
// 16-byte cp.async chunks spread over the block. COLS, LD and stride multiples
// of 8, g 16-byte aligned.
template <int ROWS, int COLS, int LD>
__device__ __forceinline__ void async_tile(bf16* s, const bf16* g, int64_t stride, int nvalid) {
  constexpr int kChunks = COLS / 8;
  for (int e = threadIdx.x; e < ROWS * kChunks; e += kThreads) {
    const int r = e / kChunks, c = (e % kChunks) * 8;
    const bool valid = r < nvalid;
    ptx::cp_async_16(s + r * LD + c, valid ? g + r * stride + c : g, valid);
  }
}

// Max and sum over the 4 lanes of a quad: the lanes holding one row of an mma fragment.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// The A fragment of a 16×16 tile whose rows are the C fragments c0 (columns
// 0-7) and c1 (columns 8-15) of a product, rounded to bf16: P or dS re-used as
// an operand without leaving registers.
__device__ __forceinline__ void a_from_c(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = ptx::pack_bf16(c0[0], c0[1]);
  a[1] = ptx::pack_bf16(c0[2], c0[3]);
  a[2] = ptx::pack_bf16(c1[0], c1[1]);
  a[3] = ptx::pack_bf16(c1[2], c1[3]);
}

// ldmatrix addressing of lane `lane` for a 16×16 bf16 block at row r, column c of
// a row-major tile with pitch ld:
//   a_rows: the A fragment (rows r..r+16, columns c..c+16);
//   b_pair: two B fragments of a [n][k] tile (n rows r..r+16 as two 8-row n-tiles, k columns c..c+16);
//   b_pair_trans (.trans): two B fragments of a [k][n] tile (k rows r..r+16, n columns c..c+16 as two n-tiles).
__device__ __forceinline__ int a_rows(int lane, int r, int c, int ld) {
  return (r + (lane / 8 % 2) * 8 + lane % 8) * ld + c + (lane / 16) * 8;
}
__device__ __forceinline__ int b_pair(int lane, int r, int c, int ld) {
  return (r + (lane / 16) * 8 + lane % 8) * ld + c + (lane / 8 % 2) * 8;
}
__device__ __forceinline__ int b_pair_trans(int lane, int r, int c, int ld) {
  return (r + (lane / 8 % 2) * 8 + lane % 8) * ld + c + (lane / 16) * 8;
}

// A warp's A fragments of a 16-row tile with K columns (Q in the forward and
// the dQ pass): loaded once into registers (IN_REGS) or by ldmatrix at each use.
// row: this lane's ldmatrix row (a_rows). A functor for mma_a_bt.
template <int K, bool IN_REGS>
struct AFrags {
  const bf16* row;
  uint32_t f[IN_REGS ? K / 16 : 1][4];
  __device__ explicit AFrags(const bf16* r) : row(r) {
    if constexpr (IN_REGS) {
#pragma unroll
      for (int kk = 0; kk < K / 16; ++kk) ptx::ldmatrix_x4(f[kk], row + 16 * kk);
    }
  }
  __device__ __forceinline__ void operator()(int kk, uint32_t (&a)[4]) const {
    if constexpr (IN_REGS) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = f[IN_REGS ? kk : 0][i];
    } else {
      ptx::ldmatrix_x4(a, row + 16 * kk);
    }
  }
};

// The two products every attention kernel is made of, for one warp's 16 rows
// (lane = the lane index; ldmatrix rows as a_rows / b_pair / b_pair_trans):
//
// acc (16 × N) += A (16 × K) · Bᵀ, B an [n][k] tile in shared memory (pitch ldb):
// S = Q Kᵀ, G = dO Vᵀ and their transposes. a_frag(kk, a) gives A's fragment for
// columns 16·kk..+16 (from registers or by ldmatrix). UNROLL: of the k loop.
template <int K, int N, int UNROLL = K / 16, class AFrag>
__device__ __forceinline__ void mma_a_bt(float (&acc)[N / 8][4], AFrag&& a_frag, const bf16* b, int ldb, int lane) {
#pragma unroll UNROLL
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t a[4];
    a_frag(kk, a);
#pragma unroll
    for (int jp = 0; jp < N / 16; ++jp) {
      uint32_t bb[4];
      ptx::ldmatrix_x4(bb, b + b_pair(lane, 16 * jp, 16 * kk, ldb));
      const uint32_t b0[2] = {bb[0], bb[1]}, b1[2] = {bb[2], bb[3]};
      ptx::mma(acc[2 * jp], a, b0);
      ptx::mma(acc[2 * jp + 1], a, b1);
    }
  }
}

// acc (16 × N) += C (16 × K, a product's C fragments re-packed as the bf16 A
// operand: P or dS) · B, B a [k][n] tile in shared memory (pitch ldb): O += P V,
// dQ += dS K, dV += Pᵀ dO, dK += dSᵀ Q.
template <int K, int N>
__device__ __forceinline__ void mma_c_b(float (&acc)[N / 8][4], const float (&c)[K / 8][4], const bf16* b, int ldb,
                                        int lane) {
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks) {
    uint32_t a[4];
    a_from_c(a, c[2 * ks], c[2 * ks + 1]);
#pragma unroll
    for (int cp = 0; cp < N / 16; ++cp) {
      uint32_t bb[4];
      ptx::ldmatrix_x4_trans(bb, b + b_pair_trans(lane, 16 * ks, 16 * cp, ldb));
      const uint32_t b0[2] = {bb[0], bb[1]}, b1[2] = {bb[2], bb[3]};
      ptx::mma(acc[2 * cp], a, b0);
      ptx::mma(acc[2 * cp + 1], a, b1);
    }
  }
}

}  // namespace dt::cuda_ops::flash
