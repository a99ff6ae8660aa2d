// RMSNorm on CUDA: one block per row, statistics in fp32 (kernels/cpu/rmsnorm.cpp).
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;
// Row blocks of the backward; each leaves one dg partial row, summed in block
// order by a second kernel, so dg does not depend on scheduling.
constexpr int kDgBlocks = 512;
// The backward keeps a block's dg partial row in dynamic shared memory, which
// must fit in the default 48 KB next to block_sum's static float[32].
constexpr int64_t kMaxDgCols = (48 * 1024 - 32 * sizeof(float)) / sizeof(float);

// x, out (N,C); g (C); rstd (N) f32. Safe in place (out == x): each thread
// rewrites only the columns it read.
__global__ void rmsnorm_forward_kernel(FBuf out, float* rstd, FBuf x, FBuf g, int64_t C, float eps) {
  const int64_t row = blockIdx.x;
  const int64_t base = row * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = x.ld(base + c);
    ss += v * v;
  }
  ss = block_sum(ss);
  const float r = 1.f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out.st(base + c, x.ld(base + c) * r * g.ld(c));
}

// dx (N,C) += rstd·(dout·g − x·rstd²·Σ(dout·g·x)/C); the block's rows'
// Σ dout·x·rstd goes to partial[blockIdx.x] (C floats).
__global__ void rmsnorm_backward_kernel(FBuf dx, float* partial, FBuf dout, FBuf x, FBuf g, const float* rstd,
                                        int64_t N, int64_t C) {
  DT_DYNAMIC_SMEM(float, dg_local);  // (C); column c is only touched by thread c % blockDim.x
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dg_local[c] = 0.f;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int64_t base = row * C;
    const float r = rstd[row];
    float dot = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += dout.ld(base + c) * g.ld(c) * x.ld(base + c);
    dot = block_sum(dot);
    const float m = dot * r * r / float(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float di = dout.ld(base + c), xi = x.ld(base + c);
      dx.st(base + c, dx.ld(base + c) + r * (di * g.ld(c) - xi * m));
      dg_local[c] += di * xi * r;
    }
  }
  float* out = partial + int64_t(blockIdx.x) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out[c] = dg_local[c];
}

// dg (C) += Σ_b partial[b, c], b in order.
__global__ void sum_dg_partials_kernel(FBuf dg, const float* partial, int nblocks, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int b = 0; b < nblocks; ++b) s += partial[int64_t(b) * C + c];
  dg.st(c, dg.ld(c) + s);
}

}  // namespace

void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor g, float eps) {
  const int64_t N = x.rows(), C = x.cols();
  DT_CHECK(g.numel() == C && out.numel() == x.numel() && rstd.numel() == N);
  require_dtype(rstd, DType::F32, "rmsnorm_forward", "rstd");
  if (N == 0) return;
  DT_LAUNCH(rmsnorm_forward_kernel, N, kThreads, 0, fbuf(out, "rmsnorm_forward"), rstd.f32(),
            fbuf(x, "rmsnorm_forward"), fbuf(g, "rmsnorm_forward"), C, eps);
}

void rmsnorm_backward(Tensor dx, Tensor dg, Tensor dout, Tensor x, Tensor g, Tensor rstd) {
  const int64_t N = x.rows(), C = x.cols();
  DT_CHECK(g.numel() == C && dg.numel() == C && dx.numel() == x.numel() && dout.numel() == x.numel() &&
           rstd.numel() == N);
  require_dtype(rstd, DType::F32, "rmsnorm_backward", "rstd");
  if (C > kMaxDgCols)
    fail("rmsnorm_backward: CUDA kernel supports at most ", kMaxDgCols, " columns, got ", C);
  if (N == 0) return;
  const int nblocks = int(N < kDgBlocks ? N : kDgBlocks);
  float* partial = static_cast<float*>(op_scratch(kScratchRmsnormDg, size_t(nblocks) * C * sizeof(float)));
  DT_LAUNCH(rmsnorm_backward_kernel, nblocks, kThreads, C * sizeof(float), fbuf(dx, "rmsnorm_backward"), partial,
            fbuf(dout, "rmsnorm_backward"), fbuf(x, "rmsnorm_backward"), fbuf(g, "rmsnorm_backward"), rstd.f32(), N, C);
  DT_LAUNCH(sum_dg_partials_kernel, blocks_for(C, kThreads), kThreads, 0, fbuf(dg, "rmsnorm_backward"), partial,
            nblocks, C);
}

}  // namespace dt::cuda_ops
