// RoPE on CUDA, interleaved pairs (2i, 2i+1), in place (kernels/cpu/rope.cpp).
// Indices come from the grid (one block per (b, t) row, threadIdx.x the step
// of kVec = 8 elements within a head, threadIdx.y the head), so no element
// needs a division; a step is read and written with 16-byte accesses when d is
// a multiple of 8 and x and the table are 16-byte aligned.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// table (T, d) f32: [cos, sin] of (pos0+t)·θ^(−2i/d) for pair i, computed in
// double like the CPU table so both round to the same fp32 values.
// grid (T, ⌈(d/2)/blockDim.x⌉): t = blockIdx.x.
__global__ void rope_table_kernel(float* table, int64_t d, double theta, int64_t pos0) {
  const int64_t t = blockIdx.x;
  const int64_t i = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d / 2) return;
  const double angle = double(pos0 + t) * pow(theta, -2.0 * double(i) / double(d));
  table[t * d + 2 * i] = float(cos(angle));
  table[t * d + 2 * i + 1] = float(sin(angle));
}

// x (B,T,nh,d), one block per row (b, t) = blockIdx.x, t = that mod T (once
// per block). Thread (sx, hy) rotates the pairs of columns [8sx, 8sx + 8) ∩
// [0, d) of heads hy, hy + blockDim.y, …: (x0, x1) → (x0·c − x1·s, x0·s + x1·c),
// with s negated for the backward (the inverse rotation).
__global__ void rope_rotate_kernel(FBuf x, const float* table, int64_t T, int nh, int d, float sign, bool vec) {
  const int64_t row = blockIdx.x;
  const int64_t t = row % T;
  const int col = int(threadIdx.x) * kVec;
  if (col >= d) return;
  const int n = d - col < kVec ? d - col : kVec;  // even: d is
  float cs[kVec];  // [cos, sin] of the step's pairs
  const float* tab = table + t * d + col;
  if (vec) {
    const float4 a = ld16f(tab), b = ld16f(tab + 4);
    cs[0] = a.x, cs[1] = a.y, cs[2] = a.z, cs[3] = a.w, cs[4] = b.x, cs[5] = b.y, cs[6] = b.z, cs[7] = b.w;
  } else {
    DT_UNROLL
    for (int j = 0; j < kVec; ++j) cs[j] = j < n ? tab[j] : 0.f;
  }
  for (int h = threadIdx.y; h < nh; h += blockDim.y) {
    const int64_t e = (row * nh + h) * d + col;
    float v[kVec];
    x.ld8(e, v, vec, n);
    DT_UNROLL
    for (int p = 0; p < kVec / 2; ++p) {
      const float c = cs[2 * p], s = sign * cs[2 * p + 1], x0 = v[2 * p], x1 = v[2 * p + 1];
      v[2 * p] = x0 * c - x1 * s;
      v[2 * p + 1] = x0 * s + x1 * c;
    }
    x.st8(e, v, vec, n);
  }
}

void rope_rotate(Tensor x, Tensor table, float sign, const char* op) {
  DT_CHECK(x.ndim == 4, op, " expects (B,T,nh,d), got ", x.shape_str());
  const int64_t T = x.dim(1), nh = x.dim(2), d = x.dim(3);
  DT_CHECK(d % 2 == 0 && table.rows() >= T && table.cols() == d, op, " table ", table.shape_str(), " for ", x.shape_str());
  DT_CHECK(d <= 1024 * kVec && nh <= INT32_MAX, op, ": head_dim ", d, " (at most ", 1024 * kVec, ": one thread per ",
           kVec, " columns) or ", nh, " heads too large");
  require_dtype(table, DType::F32, op, "the rope table");
  const FBuf xb = fbuf(x, op);
  const int64_t rows = x.dim(0) * T;
  if (rows == 0 || nh == 0 || d == 0) return;
  const int sx = int(vec_steps(d));
  const int64_t hy = kThreads / sx > 1 ? kThreads / sx : 1;
  const dim3 block(unsigned(sx), unsigned(hy < nh ? hy : nh));
  DT_LAUNCH(rope_rotate_kernel, rows, block, 0, xb, table.f32(), T, int(nh), int(d), sign,
            vec_ok(d, {xb.p, table.ptr}));
}

}  // namespace

void rope_table(Tensor table, double theta, int64_t pos0) {
  const int64_t T = table.rows(), d = table.cols();
  DT_CHECK(d % 2 == 0, "RoPE needs an even head_dim, got ", d);
  require_dtype(table, DType::F32, "rope_table", "table");
  if (T == 0 || d == 0) return;
  const int threads = int(d / 2 < kThreads ? d / 2 : kThreads);
  DT_LAUNCH(rope_table_kernel, dim3(unsigned(T), unsigned(blocks_for(d / 2, threads))), threads, 0, table.f32(), d,
            theta, pos0);
}

void rope_forward(Tensor x, Tensor table) { rope_rotate(x, table, 1.f, "rope_forward"); }

// The rotation is orthogonal, so its gradient is the inverse rotation.
void rope_backward(Tensor dx, Tensor table) { rope_rotate(dx, table, -1.f, "rope_backward"); }

}  // namespace dt::cuda_ops
