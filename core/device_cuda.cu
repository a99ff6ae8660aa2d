// CUDA memory for the Device seam (the kernels are in kernels/cuda/).
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "kernels/cuda/cuda_common.cuh"

namespace dt {

namespace {
std::atomic<int64_t> g_allocations{0};
}

void* cuda_malloc_counted(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes));
  g_allocations.fetch_add(1);
  return p;
}

int64_t cuda_allocation_count() { return g_allocations.load(); }

void* cuda_alloc(int index, size_t bytes) {
  CUDA_CHECK(cudaSetDevice(index));
  return cuda_malloc_counted(bytes);
}

void cuda_free(void* ptr) { CUDA_CHECK(cudaFree(ptr)); }

void cuda_memset_zero(void* ptr, size_t bytes) { CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

void cuda_copy(void* dst, bool dst_cuda, const void* src, bool src_cuda, size_t bytes) {
  cudaMemcpyKind kind = dst_cuda ? (src_cuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                 : cudaMemcpyDeviceToHost;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void cuda_synchronize(int index) {
  CUDA_CHECK(cudaSetDevice(index));
  CUDA_CHECK(cudaDeviceSynchronize());
}

int cuda_count() {
  int n = 0;
  // No driver or no GPU: treat any failure as "no GPU" (DESIGN §3).
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string cuda_name(int index) {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

}  // namespace dt
