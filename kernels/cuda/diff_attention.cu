// Differential attention on CUDA (DESIGN §2, kernels/ops.hpp; CPU twins:
// kernels/cpu/diff_attention.cpp and the combine of kernels/cpu/context_parallel_blocks.cpp):
//   λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init
//   o1, o2 = the two maps of the flash kernel (one V tile feeds both)
//   out = RMSNorm(o1 − λ·o2; g_sub) · (1 − λ_init)
// λ lives on the device (flash::DeviceScalars): every op computes it from the
// λ vectors with a one-block kernel and reduces dλ there, so none waits for
// the host; only diff_lambda reads it back.
//
// The combine backward's sums over rows (dg_sub, dλ) are deterministic by
// default: each block leaves its partial sums (1024 blocks at most: 4·2d + 8
// bytes each, ≤ 1.1 MB) and combine_reduce_kernel adds them in a fixed order
// (one warp per output). With ops::deterministic() false, blocks add them with
// atomics.
#include <algorithm>

#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops {

namespace {

using flash::bf16;
using flash::DeviceScalars;
using flash::kThreads;
using flash::kWarps;

// ---- λ -------------------------------------------------------------------------

using flash::LambdaVecs;

LambdaVecs lambda_vecs(const ops::DiffLambda& lam, const char* op) {
  const int64_t d = lam.q1.numel();
  DT_CHECK(lam.k1.numel() == d && lam.q2.numel() == d && lam.k2.numel() == d, op, ": λ vectors differ in size");
  return {fbuf(lam.q1, op), fbuf(lam.k1, op), fbuf(lam.q2, op), fbuf(lam.k2, op), int(d), lam.lambda_init};
}

// (λq1·λk1, λq2·λk2) in double, returned to every thread of the block.
__device__ double2 lambda_dots(const LambdaVecs& l) {
  double a = 0.0, b = 0.0;
  for (int j = threadIdx.x; j < l.d; j += blockDim.x) {
    a += double(l.q1.ld(j)) * l.k1.ld(j);
    b += double(l.q2.ld(j)) * l.k2.ld(j);
  }
  a = block_sum(a);
  b = block_sum(b);
  return make_double2(a, b);
}

// s->lambda = λ; s->dscale = {1, −λ} (map 2's output gradient is −λ·dpre);
// also *out = λ when out is not null.
__global__ void lambda_kernel(LambdaVecs l, DeviceScalars* s, float* out) {
  const double2 dots = lambda_dots(l);
  if (threadIdx.x == 0) {
    const float lambda = float(exp(dots.x) - exp(dots.y) + l.lambda_init);
    s->lambda = lambda;
    s->dscale[0] = 1.f;
    s->dscale[1] = -lambda;
    if (out) *out = lambda;
  }
}

// dq1 += dλ·e1·k1, dk1 += dλ·e1·q1, dq2 −= dλ·e2·k2, dk2 −= dλ·e2·q2 (F32),
// e1 = exp(λq1·λk1), e2 = exp(λq2·λk2).
__global__ void lambda_backward_kernel(LambdaVecs l, float* dq1, float* dk1, float* dq2, float* dk2,
                                       const double* dlambda) {
  const double2 dots = lambda_dots(l);
  const double g1 = *dlambda * exp(dots.x), g2 = *dlambda * exp(dots.y);
  for (int j = threadIdx.x; j < l.d; j += kThreads) {
    dq1[j] += float(g1 * l.k1.ld(j));
    dk1[j] += float(g1 * l.q1.ld(j));
    dq2[j] -= float(g2 * l.k2.ld(j));
    dk2[j] -= float(g2 * l.q2.ld(j));
  }
}

// λ and dscale into the device scalars s (and λ into out when not null).
void compute_lambda(const LambdaVecs& l, DeviceScalars* s, float* out = nullptr) {
  DT_LAUNCH(lambda_kernel, 1, kThreads, 0, l, s, out);
}

void launch_lambda_backward(const ops::DiffLambdaGrads& dlam, const LambdaVecs& l, const double* dlambda,
                            const char* op) {
  const Tensor* grads[4] = {&dlam.q1, &dlam.k1, &dlam.q2, &dlam.k2};
  for (const Tensor* t : grads) {
    require_dtype(*t, DType::F32, op, "a λ gradient");
    DT_CHECK(t->numel() == l.d, op, ": λ gradient ", t->shape_str());
  }
  DT_LAUNCH(lambda_backward_kernel, 1, kThreads, 0, l, dlam.q1.f32(), dlam.k1.f32(), dlam.q2.f32(), dlam.k2.f32(),
            dlambda);
}

// ---- the combine: out = RMSNorm(o1 − λ·o2; g)·post, one warp per row ----------

constexpr int kMaxCols = 256, kPerLane = kMaxCols / 32;  // row width 2d ≤ 256

struct Combine {
  FBuf o1, o2, g;        // o1, o2 (rows, n); g (n)
  int64_t rows;
  int n;
  float post;            // 1 − λ_init
  const float* lambda;   // device
};

Combine combine_args(const Tensor& o1, const Tensor& o2, const Tensor& g, int64_t rows, int64_t n,
                     float lambda_init, const float* lambda, const char* op) {
  DT_CHECK(n > 0 && n <= kMaxCols, op, ": row width ", n, " (2·head_dim) must be at most ", kMaxCols);
  DT_CHECK(o1.numel() == rows * n && o2.numel() == rows * n && g.numel() == n, op, ": o1 ", o1.shape_str(), " o2 ",
           o2.shape_str(), " g_sub ", g.shape_str(), " for ", rows, " rows of ", n);
  return {fbuf(o1, op), fbuf(o2, op), fbuf(g, op), rows, int(n), 1.f - lambda_init, lambda};
}

// out (rows, n), rstd (rows)
__global__ void combine_forward_kernel(Combine c, FBuf out, float* rstd, float eps) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float lambda = *c.lambda;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + warp; row < c.rows; row += int64_t(gridDim.x) * kWarps) {
    const int64_t base = row * c.n;
    float y[kPerLane];
    float ss = 0.f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int col = lane + 32 * t;
      y[t] = col < c.n ? c.o1.ld(base + col) - lambda * c.o2.ld(base + col) : 0.f;
      ss += y[t] * y[t];
    }
    const float r = 1.f / sqrtf(warp_sum(ss) / float(c.n) + eps);
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int col = lane + 32 * t;
      if (col < c.n) out.st(base + col, y[t] * r * c.g.ld(col) * c.post);
    }
    if (lane == 0) rstd[row] = r;
  }
}

// Where the combine backward's per-block sums go: deterministic, to partials
// (dg_part (blocks, n), dl_part (blocks)) that combine_reduce_kernel adds in a
// fixed order; otherwise (dg_part null) by atomics into dg (n, +=) and *dlambda.
struct CombineGrads {
  float* dg;
  double* dlambda;
  float* dg_part;
  double* dl_part;
};
constexpr int kMaxCombineBlocks = 1024;

// Where the flash backward's Δ goes when the combine computes it on the way:
// delta (2, B, H, T) f32, Δ_1 = dpre·o1 and Δ_2 = −λ·(dpre·o2) per row, with dpre
// as the flash kernels read it (bf16); rows of the combine are (b·T + t)·H + h.
struct DeltaOut {
  float* delta;  // null: not wanted
  int T, H;
};

// dpre (rows, n) = d loss/d(o1 − λ·o2); this block's Σ over its rows of
// dout·post·y·r (dg) and of −dpre·o2 (dλ, in double) to `to`; Δ to dl.
__global__ void combine_backward_kernel(Combine c, FBuf dpre, FBuf dout, const float* rstd, CombineGrads to,
                                        DeltaOut dl) {
  __shared__ float dg_part[kWarps][kMaxCols];
  __shared__ double dl_part[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float lambda = *c.lambda;
  float dg_lane[kPerLane] = {};  // this lane's columns, summed over its rows
  double dl_lane = 0.0;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + warp; row < c.rows; row += int64_t(gridDim.x) * kWarps) {
    const int64_t base = row * c.n;
    const float r = rstd[row];
    float y[kPerLane], o1[kPerLane], o2[kPerLane], dp[kPerLane];
    float sdot = 0.f;
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int col = lane + 32 * t;
      y[t] = o1[t] = o2[t] = dp[t] = 0.f;
      if (col < c.n) {
        o1[t] = c.o1.ld(base + col);
        o2[t] = c.o2.ld(base + col);
        y[t] = o1[t] - lambda * o2[t];
        const float gy = dout.ld(base + col) * c.post;
        dp[t] = gy * c.g.ld(col);
        sdot += dp[t] * y[t];
        dg_lane[t] += gy * y[t] * r;
      }
    }
    const float m = warp_sum(sdot) * r * r / float(c.n);
    float d1 = 0.f, d2 = 0.f;  // Δ's dot products, from dpre rounded as stored
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int col = lane + 32 * t;
      if (col < c.n) {
        const float d = r * (dp[t] - y[t] * m);
        dpre.st(base + col, d);
        dl_lane -= double(d) * o2[t];
        const float dr = dpre.bf16 ? __bfloat162float(__float2bfloat16(d)) : d;
        d1 += dr * o1[t];
        d2 += dr * o2[t];
      }
    }
    if (dl.delta) {  // uniform
      d1 = warp_sum(d1);
      d2 = warp_sum(d2);
      if (lane == 0) {
        const int64_t h = row % dl.H, bt = row / dl.H, t = bt % dl.T, b = bt / dl.T;
        const int64_t i = (b * dl.H + h) * dl.T + t, map_rows = c.rows;
        dl.delta[i] = d1;
        dl.delta[map_rows + i] = -lambda * d2;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kPerLane; ++t)
    if (lane + 32 * t < c.n) dg_part[warp][lane + 32 * t] = dg_lane[t];
  dl_lane = warp_sum(dl_lane);
  if (lane == 0) dl_part[warp] = dl_lane;
  __syncthreads();
  for (int col = threadIdx.x; col < c.n; col += kThreads) {
    float s = 0.f;
    for (int w = 0; w < kWarps; ++w) s += dg_part[w][col];
    if (to.dg_part) to.dg_part[int64_t(blockIdx.x) * c.n + col] = s;
    else atomicAdd(to.dg + col, s);
  }
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int w = 0; w < kWarps; ++w) s += dl_part[w];
    if (to.dl_part) to.dl_part[blockIdx.x] = s;
    else atomicAdd(to.dlambda, s);
  }
}

// One warp per output: warp j < n adds Σ_b dg_part[b, j] to dg[j], warp n writes
// Σ_b dl_part[b] to *dlambda. Lane l sums partials l, l + 32, ... in order, then a
// warp_sum (a fixed butterfly): the same order on every run. grid ⌈(n+1)/kWarps⌉.
__global__ void combine_reduce_kernel(CombineGrads to, int nb, int n) {
  const int j = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (j > n) return;  // whole warps
  if (j < n) {
    float s = 0.f;
    for (int b = lane; b < nb; b += 32) s += to.dg_part[int64_t(b) * n + j];
    s = warp_sum(s);
    if (lane == 0) to.dg[j] += s;
  } else {
    double s = 0.0;
    for (int b = lane; b < nb; b += 32) s += to.dl_part[b];
    s = warp_sum(s);
    if (lane == 0) *to.dlambda = s;
  }
}

int combine_blocks(int64_t rows) { return int(std::min<int64_t>(blocks_for(rows, kWarps), kMaxCombineBlocks)); }

void launch_combine_forward(const Combine& c, FBuf out, float* rstd, float eps) {
  if (c.rows == 0) return;
  DT_LAUNCH(combine_forward_kernel, combine_blocks(c.rows), kThreads, 0, c, out, rstd, eps);
}

// dg (n, F32) +=; *dlambda (device) = d loss/dλ.
void launch_combine_backward(const Combine& c, FBuf dpre, FBuf dout, const float* rstd, float* dg, double* dlambda,
                             DeltaOut dl = {}) {
  CUDA_CHECK(cudaMemsetAsync(dlambda, 0, sizeof(double), cuda_stream()));
  if (c.rows == 0) return;
  const int nb = combine_blocks(c.rows);
  CombineGrads to{dg, dlambda, nullptr, nullptr};
  if (ops::deterministic()) {
    auto* part = static_cast<unsigned char*>(
        op_scratch(kScratchCombinePartials, nb * (sizeof(double) + sizeof(float) * size_t(c.n))));
    to.dl_part = reinterpret_cast<double*>(part);
    to.dg_part = reinterpret_cast<float*>(part + nb * sizeof(double));
  }
  DT_LAUNCH(combine_backward_kernel, nb, kThreads, 0, c, dpre, dout, rstd, to, dl);
  if (to.dg_part) DT_LAUNCH(combine_reduce_kernel, int(blocks_for(c.n + 1, kWarps)), kThreads, 0, to, nb, c.n);
}

// The fused ops' shapes: q (B,T,2H,d), k (B,T,2KV,d), v (B,T,KV,2d), the causal problem over T.
flash::Problem diff_problem(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  const int T = int(q.dim(1));
  DT_CHECK(k.dim(1) == T, op, ": q ", q.shape_str(), " k ", k.shape_str());
  return flash::problem_of(2, q, k, v, {0, T, 0, T, true}, op);
}

}  // namespace

float diff_lambda(const ops::DiffLambda& lam) {
  DeviceScalars* s = flash::device_scalars();
  compute_lambda(lambda_vecs(lam, "diff_lambda"), s);
  float lambda = 0.f;
  CUDA_CHECK(cudaMemcpy(&lambda, &s->lambda, sizeof(float), cudaMemcpyDeviceToHost));
  return lambda;
}

// out (B,T,H,2d) BF16; cache.o1, o2 (B,T,H,2d) F32 or BF16; cache.lse1, lse2 (B,H,T), rstd (B,T,H) F32
void diff_attention_forward(Tensor out, const ops::DiffAttnCache& cache, Tensor q, Tensor k, Tensor v,
                            const ops::DiffLambda& lam, Tensor g_sub, float eps) {
  const char* op = "diff_attention_forward";
  const flash::Problem p = diff_problem(q, k, v, op);
  const int64_t rows = int64_t(p.B) * p.Tq * p.heads, n = 2 * p.d;
  require_dtype(out, DType::BF16, op, "out");
  require_dtype(cache.lse1, DType::F32, op, "lse1");
  require_dtype(cache.lse2, DType::F32, op, "lse2");
  require_dtype(cache.rstd, DType::F32, op, "rstd");
  DT_CHECK(out.numel() == rows * n && cache.lse1.numel() == rows && cache.lse2.numel() == rows &&
               cache.rstd.numel() == rows,
           op, ": out ", out.shape_str(), " lse ", cache.lse1.shape_str(), " rstd ", cache.rstd.shape_str());
  const Combine c = combine_args(cache.o1, cache.o2, g_sub, rows, n, lam.lambda_init, nullptr, op);  // (checks)
  // One launch: the flash kernel computes λ, both maps and the combine in its epilogue.
  const flash::CombineOut cb{lambda_vecs(lam, op), c.g, fbuf(out, op), cache.rstd.f32(), eps};
  flash::forward(p, {{c.o1, c.o2}, {cache.lse1.f32(), cache.lse2.f32()}}, &cb);
}

// dq, dk, dv (BF16) overwritten; dlam (F32) and dg_sub (2d, F32) +=; dout BF16
void diff_attention_backward(Tensor dq, Tensor dk, Tensor dv, const ops::DiffLambdaGrads& dlam, Tensor dg_sub,
                             Tensor dout, Tensor q, Tensor k, Tensor v, const ops::DiffLambda& lam, Tensor g_sub,
                             const ops::DiffAttnCache& cache, float eps) {
  (void)eps;  // the saved rstd already holds it
  const char* op = "diff_attention_backward";
  const flash::Problem p = diff_problem(q, k, v, op);
  const int64_t rows = int64_t(p.B) * p.Tq * p.heads, n = 2 * p.d;
  require_dtype(dq, DType::BF16, op, "dq");
  require_dtype(dk, DType::BF16, op, "dk");
  require_dtype(dv, DType::BF16, op, "dv");
  require_dtype(dout, DType::BF16, op, "dout");
  require_dtype(cache.lse1, DType::F32, op, "lse1");
  require_dtype(cache.lse2, DType::F32, op, "lse2");
  require_dtype(cache.rstd, DType::F32, op, "rstd");
  require_dtype(dg_sub, DType::F32, op, "dg_sub");
  DT_CHECK(dq.numel() == q.numel() && dk.numel() == k.numel() && dv.numel() == v.numel(), op, ": gradient shapes");
  DT_CHECK(dout.numel() == rows * n && cache.lse1.numel() == rows && cache.lse2.numel() == rows &&
               cache.rstd.numel() == rows && dg_sub.numel() == n,
           op, ": dout ", dout.shape_str(), " lse ", cache.lse1.shape_str(), " rstd ", cache.rstd.shape_str(),
           " dg_sub ", dg_sub.shape_str());
  const LambdaVecs l = lambda_vecs(lam, op);
  DeviceScalars* s = flash::device_scalars();
  const Combine c = combine_args(cache.o1, cache.o2, g_sub, rows, n, lam.lambda_init, &s->lambda, op);

  compute_lambda(l, s);  // λ and dscale = {1, −λ}
  // dpre (B,T,H,2d) = d loss/d(o1 − λ·o2), bf16 like the dO tiles it feeds.
  const FBuf dpre{op_scratch(kScratchAttnDpre, sizeof(bf16) * rows * n), true};
  // Δ of both maps on the way (2·rows floats), so the flash backward has no delta pass.
  const DeltaOut dl{static_cast<float*>(op_scratch(kScratchAttnDelta, sizeof(float) * 2 * rows)), p.Tq, p.heads};
  launch_combine_backward(c, dpre, fbuf(dout, op), cache.rstd.f32(), dg_sub.f32(), &s->dlambda, dl);

  flash::BackwardIo io{};
  io.dO = dpre;
  io.O[0] = c.o1;
  io.O[1] = c.o2;
  io.lse[0] = cache.lse1.f32();
  io.lse[1] = cache.lse2.f32();
  io.dscale = s->dscale;
  io.dq = static_cast<bf16*>(dq.ptr);
  io.dk = static_cast<bf16*>(dk.ptr);
  io.dv = static_cast<bf16*>(dv.ptr);
  io.accumulate = false;
  io.delta = dl.delta;
  flash::backward(p, io);
  launch_lambda_backward(dlam, l, &s->dlambda, op);
}

// out (rows, n) F32 or BF16 (n = 2d); rstd (rows) F32; λ from lam's vectors, on the device
void diff_combine_forward(Tensor out, Tensor rstd, Tensor o1, Tensor o2, const ops::DiffLambda& lam, Tensor g_sub,
                          float eps) {
  const char* op = "diff_combine_forward";
  require_dtype(rstd, DType::F32, op, "rstd");
  DT_CHECK(rstd.numel() == out.rows(), op, ": rstd ", rstd.shape_str(), " out ", out.shape_str());
  DeviceScalars* s = flash::device_scalars();
  const Combine c = combine_args(o1, o2, g_sub, out.rows(), out.cols(), lam.lambda_init, &s->lambda, op);
  compute_lambda(lambda_vecs(lam, op), s);
  launch_combine_forward(c, fbuf(out, op), rstd.f32(), eps);
}

// dpre (rows, n) F32 or BF16 overwritten; dg_sub (n) F32 +=; dlam (F32, d each) +=,
// from a d loss/dλ that never leaves the device
void diff_combine_backward(Tensor dpre, Tensor dg_sub, const ops::DiffLambdaGrads& dlam, Tensor dout, Tensor o1,
                           Tensor o2, Tensor rstd, const ops::DiffLambda& lam, Tensor g_sub) {
  const char* op = "diff_combine_backward";
  require_dtype(rstd, DType::F32, op, "rstd");
  require_dtype(dg_sub, DType::F32, op, "dg_sub");
  const int64_t rows = dout.rows(), n = dout.cols();
  DT_CHECK(dpre.numel() == rows * n && rstd.numel() == rows && dg_sub.numel() == n, op, ": dpre ",
           dpre.shape_str(), " dout ", dout.shape_str(), " rstd ", rstd.shape_str(), " dg_sub ", dg_sub.shape_str());
  const LambdaVecs l = lambda_vecs(lam, op);
  DeviceScalars* s = flash::device_scalars();
  const Combine c = combine_args(o1, o2, g_sub, rows, n, lam.lambda_init, &s->lambda, op);
  compute_lambda(l, s);
  launch_combine_backward(c, fbuf(dpre, op), fbuf(dout, op), rstd.f32(), dg_sub.f32(), &s->dlambda);
  launch_lambda_backward(dlam, l, &s->dlambda, op);
}

// out (1) F32 on the device = λ
void diff_lambda_into(Tensor out, const ops::DiffLambda& lam) {
  const char* op = "diff_lambda_into";
  require_dtype(out, DType::F32, op, "out");
  DT_CHECK(out.numel() == 1, op, ": out must hold one value, got ", out.shape_str());
  compute_lambda(lambda_vecs(lam, op), flash::device_scalars(), out.f32());
}

namespace flash {
void store_lambda(const ops::DiffLambda& lam, DeviceScalars* s, const char* op) {
  compute_lambda(lambda_vecs(lam, op), s);
}
}  // namespace flash

}  // namespace dt::cuda_ops
