// RMSNorm on CUDA: one block per row, statistics in fp32 (kernels/cpu/rmsnorm.cpp).
// Rows are walked in steps of kVec = 8 columns per thread (cuda_common.cuh),
// read and written with 16-byte accesses when C is a multiple of 8 and every
// buffer is 16-byte aligned, element by element otherwise (the same sums in
// the same order, so the same bits).
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;
// The backward keeps a block's dg partial row (C rounded up to kVec floats) in
// dynamic shared memory, which must fit in the default 48 KB next to
// block_sum's static float[32].
constexpr int64_t kMaxDgCols = (48 * 1024 - 32 * sizeof(float)) / sizeof(float) / kVec * kVec;

// x, out (N,C); g (C); rstd (N) f32. Safe in place (out == x): each thread
// rewrites only the columns it read.
__global__ void rmsnorm_forward_kernel(FBuf out, float* rstd, FBuf x, FBuf g, int64_t C, float eps, bool vec) {
  const int64_t row = blockIdx.x;
  const int64_t base = row * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < C; c += int64_t(blockDim.x) * kVec) {
    float v[kVec];
    x.ld8(base + c, v, vec, vec_len(C, c));
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) ss += v[j] * v[j];  // the zeros past C add nothing
  }
  ss = block_sum(ss);
  const float r = 1.f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < C; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(C, c);
    float v[kVec], gv[kVec];
    x.ld8(base + c, v, vec, n);
    g.ld8(c, gv, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) v[j] = v[j] * r * gv[j];
    out.st8(base + c, v, vec, n);
  }
}

// dx (N,C) += rstd·(dout·g − x·rstd²·Σ(dout·g·x)/C) for the rows blockIdx.x,
// blockIdx.x + gridDim.x, …; their Σ dout·x·rstd per column goes to the
// block's partial row (ldp ≥ C floats, a multiple of kVec).
// At most 64 registers (4 blocks of 256 per SM; 72 unbounded), no spills (ptxas -v).
__global__ void __launch_bounds__(kThreads, 4)
    rmsnorm_backward_kernel(FBuf dx, float* partial, int64_t ldp, FBuf dout, FBuf x, FBuf g, const float* rstd,
                            int64_t N, int64_t C, bool vec) {
  // dg_local (kVec, S): column s·kVec + j at [j·S + s]; step s belongs to
  // thread s % blockDim.x, and a warp's 32 steps are 32 consecutive floats.
  DT_DYNAMIC_SMEM(float, dg_local);
  const int64_t S = ldp / kVec;
  for (int64_t s = threadIdx.x; s < S; s += blockDim.x) {
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) dg_local[j * S + s] = 0.f;
  }
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * C;
    const float r = rstd[row];
    float dot = 0.f;
    for (int64_t s = threadIdx.x; s < S; s += blockDim.x) {
      const int64_t c = s * kVec;
      const int n = vec_len(C, c);
      float dv[kVec], gv[kVec], xv[kVec];
      dout.ld8(base + c, dv, vec, n);
      g.ld8(c, gv, vec, n);
      x.ld8(base + c, xv, vec, n);
      DT_UNROLL
      for (int j = 0; j < kVec; ++j) dot += dv[j] * gv[j] * xv[j];
    }
    dot = block_sum(dot);
    const float m = dot * r * r / float(C);
    for (int64_t s = threadIdx.x; s < S; s += blockDim.x) {
      const int64_t c = s * kVec;
      const int n = vec_len(C, c);
      float dv[kVec], gv[kVec], xv[kVec], dxv[kVec];
      dout.ld8(base + c, dv, vec, n);
      g.ld8(c, gv, vec, n);
      x.ld8(base + c, xv, vec, n);
      dx.ld8(base + c, dxv, vec, n);
      DT_UNROLL
      for (int j = 0; j < kVec; ++j) {
        dxv[j] = dxv[j] + r * (dv[j] * gv[j] - xv[j] * m);
        dg_local[j * S + s] += dv[j] * xv[j] * r;  // 0 past C
      }
      dx.st8(base + c, dxv, vec, n);
    }
  }
  const FBuf out{partial + int64_t(blockIdx.x) * ldp, false};  // 16-byte aligned: scratch base, ldp % kVec == 0
  for (int64_t s = threadIdx.x; s < S; s += blockDim.x) {
    float v[kVec];
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) v[j] = dg_local[j * S + s];
    out.st8(s * kVec, v, true);
  }
}

// dg (C) += Σ_b partial[b, c], in a fixed order for a given number of blocks:
// warp w of a (32, 8) block sums rows b ≡ w (mod 8) in ascending order for 32
// columns, then one thread adds the 8 warp sums in warp order.
constexpr int kSumWarps = 8;
__global__ void sum_dg_partials_kernel(FBuf dg, const float* partial, int64_t ldp, int nblocks, int64_t C) {
  __shared__ float warp_part[kSumWarps][32];
  const int64_t c = blockIdx.x * int64_t(32) + threadIdx.x;
  float s = 0.f;
  if (c < C)
    for (int b = threadIdx.y; b < nblocks; b += kSumWarps) s += partial[int64_t(b) * ldp + c];
  warp_part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float total = 0.f;
  for (int w = 0; w < kSumWarps; ++w) total += warp_part[w][threadIdx.x];
  dg.st(c, dg.ld(c) + total);
}

}  // namespace

void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor g, float eps) {
  const int64_t N = x.rows(), C = x.cols();
  DT_CHECK(g.numel() == C && out.numel() == x.numel() && rstd.numel() == N);
  require_dtype(rstd, DType::F32, "rmsnorm_forward", "rstd");
  const char* op = "rmsnorm_forward";
  const FBuf ob = fbuf(out, op), xb = fbuf(x, op), gb = fbuf(g, op);
  if (N == 0) return;
  DT_LAUNCH(rmsnorm_forward_kernel, N, row_threads(vec_steps(C), kThreads), 0, ob, rstd.f32(), xb, gb, C, eps,
            vec_ok(C, {ob.p, xb.p, gb.p}));
}

void rmsnorm_backward(Tensor dx, Tensor dg, Tensor dout, Tensor x, Tensor g, Tensor rstd) {
  const int64_t N = x.rows(), C = x.cols();
  DT_CHECK(g.numel() == C && dg.numel() == C && dx.numel() == x.numel() && dout.numel() == x.numel() &&
           rstd.numel() == N);
  require_dtype(rstd, DType::F32, "rmsnorm_backward", "rstd");
  const int64_t ldp = vec_steps(C) * kVec;
  if (ldp > kMaxDgCols)
    fail("rmsnorm_backward: CUDA kernel supports at most ", kMaxDgCols, " columns, got ", C);
  const char* op = "rmsnorm_backward";
  const FBuf dxb = fbuf(dx, op), dgb = fbuf(dg, op), db = fbuf(dout, op), xb = fbuf(x, op), gb = fbuf(g, op);
  if (N == 0) return;
  // One block per row up to what the device holds at once; each leaves one dg
  // partial row, summed in block order afterwards, so dg does not depend on scheduling.
  const int threads = row_threads(vec_steps(C), kThreads);
  const size_t smem = size_t(ldp) * sizeof(float);
  const int64_t fill = resident_blocks(rmsnorm_backward_kernel, threads, smem);
  const int nblocks = int(N < fill ? N : fill);
  float* partial = static_cast<float*>(op_scratch(kScratchRmsnormDg, size_t(nblocks) * smem));
  DT_LAUNCH(rmsnorm_backward_kernel, nblocks, threads, smem, dxb, partial, ldp, db, xb, gb, rstd.f32(), N, C,
            vec_ok(C, {dxb.p, db.p, xb.p, gb.p}));
  DT_LAUNCH(sum_dg_partials_kernel, blocks_for(C, 32), dim3(32, kSumWarps), 0, dgb, partial, ldp, nblocks, C);
}

}  // namespace dt::cuda_ops
