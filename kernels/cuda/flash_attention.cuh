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
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"  // warp_sum, warp_max, block_sum

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
};

// One launch. With combine (maps 2, one causal problem over the whole
// sequence) the kernel also writes the differential output and its rstd.
void forward(const Problem& p, const ForwardOut& o, const CombineOut* combine = nullptr);
// Deterministic (ops::deterministic(), the default): dK/dV and dQ come from two
// kernels that each own their outputs (flash_attention_backward.cu, _dq.cu);
// otherwise one kernel adds dQ with fp32 atomics.
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
template <class Kernel>
void opt_in_smem(Kernel* kernel, size_t bytes, bool (&done)[kMaxDevices]) {
  const int dev = current_device();
  if (done[dev]) return;
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

// Tensor-core tiles: bf16 16×16×16 with fp32 accumulation. The "t" forms read
// a row-major tile as its transpose (column-major): K for Kᵀ, P for Pᵀ.
using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, bf16, nvcuda::wmma::row_major>;
using FragAt = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, bf16, nvcuda::wmma::col_major>;
using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, bf16, nvcuda::wmma::row_major>;
using FragBt = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, bf16, nvcuda::wmma::col_major>;
using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

// Shared tile s (ROWS×COLS bf16, rows lds apart) = global rows g + r·stride for
// r < nvalid, zero below (a zero row never turns a masked 0·x into NaN).
// Copies 16-byte chunks; needs COLS, lds and stride multiples of 8 and g 16-byte aligned.
template <int ROWS, int COLS>
__device__ __forceinline__ void load_tile(bf16* s, int lds, const bf16* g, int64_t stride, int nvalid) {
  constexpr int kChunks = COLS / 8;
  for (int e = threadIdx.x; e < ROWS * kChunks; e += kThreads) {
    const int r = e / kChunks, c = (e % kChunks) * 8;
    uint4 x = make_uint4(0, 0, 0, 0);
    if (r < nvalid) x = *reinterpret_cast<const uint4*>(g + r * stride + c);
    *reinterpret_cast<uint4*>(s + r * lds + c) = x;
  }
}

// The same from an f32 or bf16 tensor (element offset off), rounded to bf16.
template <int ROWS, int COLS>
__device__ __forceinline__ void load_tile(bf16* s, int lds, FBuf g, int64_t off, int64_t stride, int nvalid) {
  if (g.bf16) {
    load_tile<ROWS, COLS>(s, lds, static_cast<const bf16*>(g.p) + off, stride, nvalid);
    return;
  }
  const float* f = static_cast<const float*>(g.p) + off;
  for (int e = threadIdx.x; e < ROWS * COLS; e += kThreads) {
    const int r = e / COLS, c = e % COLS;
    s[r * lds + c] = __float2bfloat16(r < nvalid ? f[r * stride + c] : 0.f);
  }
}

}  // namespace dt::cuda_ops::flash
