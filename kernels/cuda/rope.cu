// RoPE on CUDA, interleaved pairs (2i, 2i+1), in place (kernels/cpu/rope.cpp).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// table (T, d) f32: [cos, sin] of (pos0+t)·θ^(−2i/d) for pair i, computed in
// double like the CPU table so both round to the same fp32 values.
__global__ void rope_table_kernel(float* table, int64_t T, int64_t d, double theta, int64_t pos0) {
  const int64_t half = d / 2;
  const int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= T * half) return;
  const int64_t t = idx / half, i = idx % half;
  const double angle = double(pos0 + t) * pow(theta, -2.0 * double(i) / double(d));
  table[t * d + 2 * i] = float(cos(angle));
  table[t * d + 2 * i + 1] = float(sin(angle));
}

// x (B,T,nh,d): one thread per pair; (x0, x1) → (x0·c − x1·s, x0·s + x1·c),
// with s negated for the backward (the inverse rotation).
__global__ void rope_rotate_kernel(FBuf x, const float* table, int64_t T, int64_t nh, int64_t d, int64_t npairs,
                                   float sign) {
  const int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= npairs) return;
  const int64_t half = d / 2;
  const int64_t i = idx % half;
  const int64_t t = (idx / half / nh) % T;
  const float c = table[t * d + 2 * i], s = sign * table[t * d + 2 * i + 1];
  const int64_t e = 2 * idx;  // element index of x0 in x: ((b·T + t)·nh + h)·d + 2i
  const float x0 = x.ld(e), x1 = x.ld(e + 1);
  x.st(e, x0 * c - x1 * s);
  x.st(e + 1, x0 * s + x1 * c);
}

void rope_rotate(Tensor x, Tensor table, float sign, const char* op) {
  DT_CHECK(x.ndim == 4, op, " expects (B,T,nh,d), got ", x.shape_str());
  const int64_t T = x.dim(1), nh = x.dim(2), d = x.dim(3);
  DT_CHECK(d % 2 == 0 && table.rows() >= T && table.cols() == d, op, " table ", table.shape_str(), " for ", x.shape_str());
  require_dtype(table, DType::F32, op, "the rope table");
  const FBuf xb = fbuf(x, op);
  const int64_t npairs = x.numel() / 2;
  if (npairs == 0) return;
  DT_LAUNCH(rope_rotate_kernel, blocks_for(npairs, kThreads), kThreads, 0, xb, table.f32(), T, nh, d, npairs, sign);
}

}  // namespace

void rope_table(Tensor table, double theta, int64_t pos0) {
  const int64_t T = table.rows(), d = table.cols();
  DT_CHECK(d % 2 == 0, "RoPE needs an even head_dim, got ", d);
  require_dtype(table, DType::F32, "rope_table", "table");
  const int64_t n = T * (d / 2);
  if (n == 0) return;
  DT_LAUNCH(rope_table_kernel, blocks_for(n, kThreads), kThreads, 0, table.f32(), T, d, theta, pos0);
}

void rope_forward(Tensor x, Tensor table) { rope_rotate(x, table, 1.f, "rope_forward"); }

// The rotation is orthogonal, so its gradient is the inverse rotation.
void rope_backward(Tensor dx, Tensor table) { rope_rotate(dx, table, -1.f, "rope_backward"); }

}  // namespace dt::cuda_ops
