// Cross-entropy fused with its gradient, and the vocab-parallel pieces, on
// CUDA (kernels/cpu/cross_entropy.cpp, vocab_parallel_cross_entropy.cpp).
// One block per row; statistics in fp32; the loss sum is reduced on the device
// in double, in a fixed order, and either copied back (a host result) or added
// to a device accumulator (the training step: no host wait). Rows are walked
// in steps of kVec = 8 columns per thread (cuda_common.cuh), with 16-byte
// accesses when V is a multiple of 8 and the logits 16-byte aligned, element by
// element otherwise (the same order, so the same bits).
#include <initializer_list>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/cuda_reduce.cuh"

namespace dt::cuda_ops {
namespace {

constexpr int kRowThreads = 512;
constexpr int kSumThreads = 1024;

// Row base of logits (V columns) overwritten with zeros (an ignored target).
__device__ void zero_row(const FBuf& logits, int64_t base, int64_t V, bool vec) {
  for (int64_t c = threadIdx.x * int64_t(kVec); c < V; c += int64_t(blockDim.x) * kVec) {
    const float zero[kVec] = {};
    logits.st8(base + c, zero, vec, vec_len(V, c));
  }
}

// Row base of logits ← exp(z − mx)·inv − grad_scale·onehot(target) (inv = grad_scale / Σexp;
// target: the row's target column, or outside [0, V) for none).
__device__ void softmax_grad_row(const FBuf& logits, int64_t base, int64_t V, bool vec, float mx, float inv,
                                 int64_t target, float grad_scale) {
  for (int64_t c = threadIdx.x * int64_t(kVec); c < V; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(V, c);
    float z[kVec];
    logits.ld8(base + c, z, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) {
      z[j] = expf(z[j] - mx) * inv;
      if (c + j == target) z[j] -= grad_scale;
    }
    logits.st8(base + c, z, vec, n);
  }
}

// logits (N,V) in place; targets (N) i32 (−1 ignored); losses (N) f32.
// Pass 1 keeps an online (max, Σexp) per thread, merged across the block;
// pass 2 overwrites the row with grad_scale·(softmax − onehot) when grad_scale ≠ 0.
// A target outside [−1, V) is recorded in bad (first one wins) and its loss is
// NaN, so a step that accumulates losses on the device cannot miss it.
__global__ void cross_entropy_kernel(FBuf logits, const int32_t* targets, float* losses, HostResult* bad, int64_t V,
                                     float grad_scale, bool vec) {
  const int64_t row = blockIdx.x, base = row * V;
  const int32_t t = targets[row];
  if (t < 0 || t >= V) {  // uniform across the block
    if (threadIdx.x == 0) {
      losses[row] = t == -1 ? 0.f : NAN;
      if (t != -1 && atomicCAS(&bad->bad_index, -1, int(row)) == -1) bad->bad_value = t;
    }
    if (grad_scale != 0.f) zero_row(logits, base, V, vec);
    return;
  }
  const float zt = logits.ld(base + t);  // read by every thread before the barriers below, so before any write
  float m = -INFINITY, s = 0.f;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < V; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(V, c);
    float z[kVec];
    logits.ld8(base + c, z, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) {
      if (j >= n) break;
      if (z[j] > m) {
        s = s * expf(m - z[j]) + 1.f;
        m = z[j];
      } else {
        s += expf(z[j] - m);
      }
    }
  }
  const float mx = block_max(m);
  const float sum = block_sum(m == -INFINITY ? 0.f : s * expf(m - mx));
  if (threadIdx.x == 0) losses[row] = mx + logf(sum) - zt;
  if (grad_scale == 0.f) return;
  softmax_grad_row(logits, base, V, vec, mx, grad_scale / sum, t, grad_scale);
}

// One block: Σ losses (N) in double, into out->value or added to *acc.
__global__ void sum_losses_kernel(HostResult* out, double* acc, const float* losses, int64_t N) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) s += double(losses[i]);
  s = block_sum(s);
  if (threadIdx.x != 0) return;
  if (acc) *acc += s;
  else out->value = s;
}

// rowmax (N) = max_j z_ij
__global__ void vocab_shard_row_max_kernel(FBuf logits, float* rowmax, int64_t V, bool vec) {
  const int64_t row = blockIdx.x, base = row * V;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < V; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(V, c);
    float z[kVec];
    logits.ld8(base + c, z, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j)
      if (j < n) m = fmaxf(m, z[j]);
  }
  m = block_max(m);
  if (threadIdx.x == 0) rowmax[row] = m;
}

// sumexp (N) = Σ_j exp(z_ij − rowmax_i); target_logit (N) = z_i,t−v0 when local, else 0
__global__ void vocab_shard_sumexp_target_kernel(FBuf logits, const int32_t* targets, int64_t v0, const float* rowmax,
                                              float* sumexp, float* target_logit, int64_t V, bool vec) {
  const int64_t row = blockIdx.x, base = row * V;
  const float m = rowmax[row];
  float s = 0.f;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < V; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(V, c);
    float z[kVec];
    logits.ld8(base + c, z, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j)
      if (j < n) s += expf(z[j] - m);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) {
    sumexp[row] = s;
    const int32_t t = targets[row];
    const int64_t r = int64_t(t) - v0;
    target_logit[row] = (t >= 0 && r >= 0 && r < V) ? logits.ld(base + r) : 0.f;
  }
}

// logits ← grad_scale·(exp(z − rowmax)/sumexp − onehot(t − v0)); zero rows where t = −1
__global__ void vocab_shard_grad_kernel(FBuf logits, const int32_t* targets, int64_t v0, const float* rowmax,
                                     const float* sumexp, float grad_scale, int64_t V, bool vec) {
  const int64_t row = blockIdx.x, base = row * V;
  const int32_t t = targets[row];
  if (t < 0) return zero_row(logits, base, V, vec);
  // t − v0 may be outside [0, V): then no column of this shard is the target.
  softmax_grad_row(logits, base, V, vec, rowmax[row], grad_scale / sumexp[row], int64_t(t) - v0, grad_scale);
}

// One block: losses (N) = rowmax + log(sumexp) − target_logit (0 where t = −1); Σ in double into
// out->value, or added to *acc.
__global__ void vocab_shard_loss_kernel(HostResult* out, double* acc, float* losses, const int32_t* targets,
                                     const float* rowmax, const float* sumexp, const float* target_logit, int64_t N) {
  double total = 0.0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const float loss = targets[i] < 0 ? 0.f : rowmax[i] + logf(sumexp[i]) - target_logit[i];
    losses[i] = loss;
    total += double(loss);
  }
  total = block_sum(total);
  if (threadIdx.x != 0) return;
  if (acc) *acc += total;
  else out->value = total;
}

void check_stats(const char* op, const Tensor& targets, std::initializer_list<const Tensor*> stats, int64_t N) {
  require_dtype(targets, DType::I32, op, "targets");
  DT_CHECK(targets.numel() == N, op, " targets ", targets.shape_str(), " for ", N, " rows");
  for (const Tensor* t : stats) {
    require_dtype(*t, DType::F32, op, "a per-row statistic (rowmax, sumexp, target_logit, losses)");
    DT_CHECK(t->numel() == N, op, " per-row tensor ", t->shape_str(), " for ", N, " rows");
  }
}

// The device accumulator of a loss sum, or nullptr.
double* accumulator(const Tensor& acc, const char* op) {
  if (!acc.defined()) return nullptr;
  require_dtype(acc, DType::F64, op, "loss_sum");
  DT_CHECK(acc.numel() == 1, op, ": loss_sum ", acc.shape_str());
  return acc.f64();
}

}  // namespace

double cross_entropy(Tensor logits, Tensor targets, Tensor losses, float grad_scale, Tensor loss_sum) {
  const int64_t N = logits.rows(), V = logits.cols();
  const char* op = "cross_entropy";
  check_stats(op, targets, {&losses}, N);
  const FBuf z = fbuf(logits, op);
  double* acc = accumulator(loss_sum, op);
  if (N == 0) return 0.0;
  HostResult* res = host_result_scratch();
  CUDA_CHECK(cudaMemsetAsync(&res->bad_index, 0xff, 2 * sizeof(int), cuda_stream()));  // bad_index = −1
  DT_LAUNCH(cross_entropy_kernel, N, row_threads(vec_steps(V), kRowThreads), 0, z, targets.i32(), losses.f32(), res,
            V, grad_scale, vec_ok(V, {z.p}));
  DT_LAUNCH(sum_losses_kernel, 1, kSumThreads, 0, res, acc, losses.f32(), N);
  if (acc) return 0.0;
  const HostResult h = fetch_host_result(res);
  if (h.bad_index >= 0)
    fail("cross_entropy: target token ", h.bad_value, " (row ", h.bad_index, ") outside the vocabulary [0, ", V,
         ")");
  return h.value;
}

void vocab_shard_row_max(Tensor logits, Tensor rowmax) {
  const int64_t N = logits.rows(), V = logits.cols();
  const char* op = "vocab_shard_row_max";
  require_dtype(rowmax, DType::F32, op, "rowmax");
  DT_CHECK(rowmax.numel() == N, op, " rowmax ", rowmax.shape_str());
  const FBuf z = fbuf(logits, op);
  if (N == 0) return;
  DT_LAUNCH(vocab_shard_row_max_kernel, N, row_threads(vec_steps(V), kRowThreads), 0, z, rowmax.f32(), V,
            vec_ok(V, {z.p}));
}

void vocab_shard_sumexp_target(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp,
                            Tensor target_logit) {
  const int64_t N = logits.rows(), V = logits.cols();
  const char* op = "vocab_shard_sumexp_target";
  check_stats(op, targets, {&rowmax, &sumexp, &target_logit}, N);
  const FBuf z = fbuf(logits, op);
  if (N == 0) return;
  DT_LAUNCH(vocab_shard_sumexp_target_kernel, N, row_threads(vec_steps(V), kRowThreads), 0, z, targets.i32(), v0,
            rowmax.f32(), sumexp.f32(), target_logit.f32(), V, vec_ok(V, {z.p}));
}

void vocab_shard_grad(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp, float grad_scale) {
  const int64_t N = logits.rows(), V = logits.cols();
  const char* op = "vocab_shard_grad";
  check_stats(op, targets, {&rowmax, &sumexp}, N);
  const FBuf z = fbuf(logits, op);
  if (N == 0) return;
  DT_LAUNCH(vocab_shard_grad_kernel, N, row_threads(vec_steps(V), kRowThreads), 0, z, targets.i32(), v0, rowmax.f32(),
            sumexp.f32(), grad_scale, V, vec_ok(V, {z.p}));
}

double vocab_shard_loss(Tensor losses, Tensor targets, Tensor rowmax, Tensor sumexp, Tensor target_logit,
                     Tensor loss_sum) {
  const int64_t N = losses.numel();
  check_stats("vocab_shard_loss", targets, {&losses, &rowmax, &sumexp, &target_logit}, N);
  double* acc = accumulator(loss_sum, "vocab_shard_loss");
  if (N == 0) return 0.0;
  HostResult* res = host_result_scratch();
  DT_LAUNCH(vocab_shard_loss_kernel, 1, kSumThreads, 0, res, acc, losses.f32(), targets.i32(), rowmax.f32(),
            sumexp.f32(), target_logit.f32(), N);
  return acc ? 0.0 : fetch_host_result(res).value;
}

}  // namespace dt::cuda_ops
