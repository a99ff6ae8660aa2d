// DIFF V2's combine (DESIGN §2, diff_v2): each output head is its two query
// heads' attention outputs, the second scaled by a per-token sigmoid gate.
#include <cmath>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

namespace {

// The rows (token, output head) and the head size, checked against the shapes.
struct CombineShape {
  int64_t rows, d;
};

CombineShape combine_shape(Tensor out_like, Tensor o, Tensor lam) {
  const int64_t rows = lam.numel(), d = rows ? out_like.numel() / rows : 0;
  DT_CHECK(rows > 0 && out_like.numel() == rows * d && o.numel() == 2 * rows * d, "diff_v2 combine: out ",
           out_like.shape_str(), ", o ", o.shape_str(), " and lam ", lam.shape_str(), " disagree");
  return {rows, d};
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

}  // namespace

void diff_v2_combine_forward(Tensor out, Tensor o, Tensor lam) {
  DT_ON_CUDA(out, diff_v2_combine_forward(out, o, lam));
  const auto [rows, d] = combine_shape(out, o, lam);
  const float* op = o.f32();
  const float* lp = lam.f32();
  float* yp = out.f32();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    // Row r = (token, head h) reads query heads 2h and 2h+1: o rows 2r, 2r+1.
    const float s = sigmoid(lp[r]);
    const float* o1 = op + 2 * r * d;
    const float* o2 = o1 + d;
    for (int64_t c = 0; c < d; ++c) yp[r * d + c] = o1[c] - s * o2[c];
  }
}

void diff_v2_combine_backward(Tensor d_o, Tensor dlam, Tensor dout, Tensor o, Tensor lam) {
  DT_ON_CUDA(d_o, diff_v2_combine_backward(d_o, dlam, dout, o, lam));
  const auto [rows, d] = combine_shape(dout, o, lam);
  DT_CHECK(d_o.numel() == o.numel() && dlam.numel() == rows, "diff_v2 combine backward: d_o ", d_o.shape_str(),
           ", dlam ", dlam.shape_str());
  const float* op = o.f32();
  const float* lp = lam.f32();
  const float* gp = dout.f32();
  float* dop = d_o.f32();
  float* dlp = dlam.f32();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float s = sigmoid(lp[r]);
    const float* g = gp + r * d;
    const float* o2 = op + (2 * r + 1) * d;
    float* d1 = dop + 2 * r * d;
    float* d2 = d1 + d;
    float dot = 0.f;
    for (int64_t c = 0; c < d; ++c) {
      d1[c] = g[c];
      d2[c] = -s * g[c];
      dot += g[c] * o2[c];
    }
    dlp[r] = -s * (1.f - s) * dot;
  }
}

}  // namespace dt::ops
