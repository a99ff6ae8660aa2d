#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.hpp"
#include "kernels/gemm_peak.hpp"
#ifdef DIFFTRON_HAVE_CUDA
#include "kernels/cuda/cuda_ops.hpp"
#endif

namespace dt {

double measure_sgemm_gflops_one_thread(int n, int reps) {
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n, 0.f);
  const int saved = omp_get_max_threads();
  openblas_set_num_threads(1);
  omp_set_num_threads(1);
  double best = 1e30;
  for (int r = 0; r <= reps; ++r) {  // r = 0 warms up
    auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f,
                c.data(), n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);
  }
  openblas_set_num_threads(saved);
  omp_set_num_threads(saved);
  return 2.0 * n * double(n) * n / best / 1e9;
}

double measure_cuda_gemm_gflops(int device, int n) {
#ifdef DIFFTRON_HAVE_CUDA
  return cuda_ops::measure_gemm_tflops(device, n) * 1e3;
#else
  (void)device, (void)n;
  fail("measuring the GPU GEMM peak needs a difftron built with CUDA");
#endif
}

}  // namespace dt
