// CUDA memory for the Device seam. Kernels come with the CUDA backend issue.
#include <cuda_runtime.h>

#include <string>

#include "core/error.hpp"

#define CUDA_CHECK(call)                                                            \
  do {                                                                              \
    cudaError_t err_ = (call);                                                      \
    if (err_ != cudaSuccess)                                                        \
      ::dt::fail(__FILE__, ":", __LINE__, ": CUDA error: ", cudaGetErrorString(err_), \
                 " (is a GPU visible? check nvidia-smi and CUDA_VISIBLE_DEVICES)");  \
  } while (0)

namespace dt {

void* cuda_alloc(int index, size_t bytes) {
  CUDA_CHECK(cudaSetDevice(index));
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void cuda_free(void* ptr) { CUDA_CHECK(cudaFree(ptr)); }

void cuda_memset_zero(void* ptr, size_t bytes) { CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

void cuda_copy(void* dst, bool dst_cuda, const void* src, bool src_cuda, size_t bytes) {
  cudaMemcpyKind kind = dst_cuda ? (src_cuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                 : cudaMemcpyDeviceToHost;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
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

}  // namespace dt
