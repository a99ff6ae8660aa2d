// Helpers shared by the CPU kernels.
#pragma once
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace dt::ops {

// Until the CUDA backend lands, an op given a device tensor says so clearly.
inline void require_cpu(const Tensor& t, const char* op) {
  if (!t.device.is_cpu())
    fail("op ", op, " has no ", t.device.str(), " kernel in this build (CUDA kernels come with the CUDA backend)");
}

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
