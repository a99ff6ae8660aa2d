// GEMM through OpenBLAS (row-major). OpenBLAS is the OpenMP build, so a call
// made inside one of our parallel regions runs on one thread.
#include <cblas.h>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

void matmul(Tensor C, Tensor A, bool trans_a, Tensor B, bool trans_b, float alpha, float beta) {
  DT_ON_CUDA(C, matmul(C, A, trans_a, B, trans_b, alpha, beta));
  const int64_t M = C.rows(), N = C.cols();
  const int64_t K = trans_a ? A.rows() : A.cols();
  DT_CHECK((trans_a ? A.cols() : A.rows()) == M, "matmul A ", A.shape_str(), " C ", C.shape_str());
  DT_CHECK((trans_b ? B.rows() : B.cols()) == N, "matmul B ", B.shape_str(), " C ", C.shape_str());
  DT_CHECK((trans_b ? B.cols() : B.rows()) == K, "matmul inner dims A ", A.shape_str(), " B ", B.shape_str());
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(M), int(N), int(K), alpha, A.f32(), int(A.cols()), B.f32(), int(B.cols()), beta,
              C.f32(), int(N));
}

void linear_forward(Tensor y, Tensor x, Tensor W) { matmul(y, x, false, W, true); }

void linear_residual_forward(Tensor out, Tensor base, Tensor x, Tensor W) {
  DT_ON_CUDA(out, linear_residual_forward(out, base, x, W));
  if (base.defined() && base.ptr != out.ptr) copy(out, base);
  matmul(out, x, false, W, true, 1.f, base.defined() ? 1.f : 0.f);
}

void linear_backward(Tensor dx, Tensor dW, Tensor dy, Tensor x, Tensor W, bool accumulate_dx) {
  if (dx.defined()) matmul(dx, dy, false, W, false, 1.f, accumulate_dx ? 1.f : 0.f);
  matmul(dW, dy, true, x, false, 1.f, 1.f);
}

}  // namespace dt::ops
