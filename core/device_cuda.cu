// CUDA memory for the Device seam (the kernels are in kernels/cuda/).
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "kernels/cuda/cuda_common.cuh"
#ifdef DIFFTRON_CUDA_EMULATION
#include "emulated_runtime.hpp"
#endif

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

// On the compute stream. cudaMemcpyAsync from pageable memory stages the bytes
// before it returns and into pageable memory waits for the copy, so callers
// with pageable buffers may reuse them at once; pinned buffers are truly
// asynchronous (core/device.hpp).
void cuda_copy(void* dst, bool dst_cuda, const void* src, bool src_cuda, size_t bytes) {
  cudaMemcpyKind kind = dst_cuda ? (src_cuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                 : cudaMemcpyDeviceToHost;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, cuda_ops::cuda_stream()));
}

void* cuda_pinned_alloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

void cuda_pinned_free(void* ptr) { CUDA_CHECK(cudaFreeHost(ptr)); }

void cuda_host_access(const void* p, size_t bytes, bool write) {
#ifdef DIFFTRON_CUDA_EMULATION
  emu::host_access(p, bytes, write);
#else
  (void)p, (void)bytes, (void)write;
#endif
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

int64_t cuda_free_bytes(int index) {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaSetDevice(index));
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return int64_t(free);
}

std::string cuda_name(int index) {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

}  // namespace dt
