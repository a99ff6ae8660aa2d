#include <algorithm>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

// out (N,C) = x · rstd · g, rstd (N) = 1/sqrt(mean(x²) + eps)
void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor g, float eps) {
  DT_ON_CUDA(x, rmsnorm_forward(out, rstd, x, g, eps));
  const int64_t N = x.rows(), C = x.cols();
  DT_CHECK(g.numel() == C && out.numel() == x.numel() && rstd.numel() == N);
  const float* xp = x.f32();
  const float* gp = g.f32();
  float* op = out.f32();
  float* rp = rstd.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const float* xi = xp + i * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xi[c] * xi[c];
    float r = 1.f / std::sqrt(ss / float(C) + eps);
    rp[i] = r;
    float* oi = op + i * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) oi[c] = xi[c] * r * gp[c];
  }
}

// With n = x·rstd: dx = rstd · (dout·g − x · rstd²·Σ(dout·g·x)/C), dg = Σ_rows dout·n.
void rmsnorm_backward(Tensor dx, Tensor dg, Tensor dout, Tensor x, Tensor g, Tensor rstd) {
  DT_ON_CUDA(x, rmsnorm_backward(dx, dg, dout, x, g, rstd));
  const int64_t N = x.rows(), C = x.cols();
  const float* xp = x.f32();
  const float* gp = g.f32();
  const float* dop = dout.f32();
  const float* rp = rstd.f32();
  float* dxp = dx.f32();
  float* dgp = dg.f32();
  const int nt = omp_get_max_threads();
  float* partial = shared_scratch(size_t(nt) * C);
  std::fill(partial, partial + size_t(nt) * C, 0.f);
#pragma omp parallel num_threads(nt)
  {
    // Each thread sums its rows' dg privately; the rows are added in thread order after.
    float* dg_local = partial + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      const float* xi = xp + i * C;
      const float* di = dop + i * C;
      const float r = rp[i];
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) dot += di[c] * gp[c] * xi[c];
      const float m = dot * r * r / float(C);
      float* dxi = dxp + i * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        dxi[c] += r * (di[c] * gp[c] - xi[c] * m);
        dg_local[c] += di[c] * xi[c] * r;
      }
    }
  }
  add_partials_in_order(dgp, partial, nt, C);
}

}  // namespace dt::ops
