#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

// out = silu(a)·b, silu(a) = a·σ(a)
void swiglu_forward(Tensor out, Tensor a, Tensor b) {
  DT_ON_CUDA(out, swiglu_forward(out, a, b));
  const int64_t n = a.numel();
  DT_CHECK(b.numel() == n && out.numel() == n);
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* op = out.f32();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float s = 1.f / (1.f + std::exp(-ap[i]));
    op[i] = ap[i] * s * bp[i];
  }
}

// d silu(a)/da = σ(a)·(1 + a·(1 − σ(a)))
void swiglu_backward(Tensor da, Tensor db, Tensor dout, Tensor a, Tensor b) {
  DT_ON_CUDA(da, swiglu_backward(da, db, dout, a, b));
  const int64_t n = a.numel();
  const float* ap = a.f32();
  const float* bp = b.f32();
  const float* gp = dout.f32();
  float* dap = da.f32();
  float* dbp = db.f32();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float s = 1.f / (1.f + std::exp(-ap[i]));
    float silu = ap[i] * s;
    dap[i] = gp[i] * bp[i] * s * (1.f + ap[i] * (1.f - s));
    dbp[i] = gp[i] * silu;
  }
}

}  // namespace dt::ops
