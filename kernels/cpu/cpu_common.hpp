// Helpers shared by the CPU kernels.
#pragma once
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#ifdef DIFFTRON_HAVE_CUDA
#include "kernels/cuda/cuda_ops.hpp"
#endif

namespace dt::ops {

// A CPU kernel given a device tensor says so clearly.
inline void require_cpu(const Tensor& t, const char* op) {
  if (!t.device.is_cpu())
    fail("op ", op, " got a ", t.device.str(), " tensor, but this difftron was built without CUDA "
         "(rebuild with nvcc available, or use runtime.device: cpu)");
}

// Each op's first line: a tensor on a CUDA device sends the whole call to the
// CUDA implementation of the same op (kernels/cuda/cuda_ops.hpp).
#ifdef DIFFTRON_HAVE_CUDA
#define DT_ON_CUDA(t, call)                                     \
  do {                                                          \
    if (!(t).device.is_cpu()) return ::dt::cuda_ops::call;      \
  } while (0)
#else
#define DT_ON_CUDA(t, call) require_cpu(t, #call)
#endif

// Per-thread scratch that grows to the largest size asked and is then reused,
// so steady-state steps do not allocate.
inline float* thread_scratch(int slot, size_t n) {
  thread_local std::vector<float> bufs[8];
  auto& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// Sums per-thread partial rows in thread order (deterministic, unlike atomics or
// a critical section whose order varies): out[c] += Σ_t partial[t·n + c].
inline void add_partials_in_order(float* out, const float* partial, int nthreads, int64_t n) {
  for (int t = 0; t < nthreads; ++t)
    for (int64_t c = 0; c < n; ++c) out[c] += partial[t * n + c];
}

// A buffer shared by all threads of one op, for such partial rows; grown
// outside parallel regions only.
inline float* shared_scratch(size_t n) {
  static std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace dt::ops
