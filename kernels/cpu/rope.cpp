#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

// table (T, d): for position pos0+t and pair i, [cos, sin] of (pos0+t)·θ^(−2i/d),
// computed in double so long contexts (θ 640,000, 64K positions) stay exact in fp32.
void rope_table(Tensor table, double theta, int64_t pos0) {
  DT_ON_CUDA(table, rope_table(table, theta, pos0));
  const int64_t T = table.rows(), d = table.cols();
  DT_CHECK(d % 2 == 0, "RoPE needs an even head_dim, got ", d);
  float* tp = table.f32();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d / 2; ++i) {
      double angle = double(pos0 + t) * std::pow(theta, -2.0 * double(i) / double(d));
      tp[t * d + 2 * i] = float(std::cos(angle));
      tp[t * d + 2 * i + 1] = float(std::sin(angle));
    }
}

// x (B,T,nh,d): pair (x0, x1) → (x0·c − x1·s, x0·s + x1·c); sign = −1 rotates back.
static void rope_rotate(Tensor x, Tensor table, float sign) {
  require_cpu(x, "rope");
  DT_CHECK(x.ndim == 4, "rope expects (B,T,nh,d), got ", x.shape_str());
  const int64_t B = x.dim(0), T = x.dim(1), nh = x.dim(2), d = x.dim(3);
  DT_CHECK(table.rows() >= T && table.cols() == d, "rope table ", table.shape_str(), " for ", x.shape_str());
  float* xp = x.f32();
  const float* tp = table.f32();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = tp + t * d;
      for (int64_t h = 0; h < nh; ++h) {
        float* v = xp + ((b * T + t) * nh + h) * d;
#pragma omp simd
        for (int64_t i = 0; i < d / 2; ++i) {
          float c = cs[2 * i], s = sign * cs[2 * i + 1];
          float x0 = v[2 * i], x1 = v[2 * i + 1];
          v[2 * i] = x0 * c - x1 * s;
          v[2 * i + 1] = x0 * s + x1 * c;
        }
      }
    }
}

void rope_forward(Tensor x, Tensor table) {
  DT_ON_CUDA(x, rope_forward(x, table));
  rope_rotate(x, table, 1.f);
}
// The rotation is orthogonal, so its gradient is the inverse rotation.
void rope_backward(Tensor dx, Tensor table) {
  DT_ON_CUDA(dx, rope_backward(dx, table));
  rope_rotate(dx, table, -1.f);
}

}  // namespace dt::ops
