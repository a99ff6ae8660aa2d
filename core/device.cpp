#include "core/device.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.hpp"

namespace dt {

// Implemented in core/device_cuda.cu when CUDA is built.
#ifdef DIFFTRON_HAVE_CUDA
void* cuda_alloc(int index, size_t bytes);
void cuda_free(void* ptr);
void cuda_memset_zero(void* ptr, size_t bytes);
void cuda_copy(void* dst, bool dst_cuda, const void* src, bool src_cuda, size_t bytes);
int cuda_count();
std::string cuda_name(int index);
int64_t cuda_free_bytes(int index);
void cuda_synchronize(int index);
void* cuda_pinned_alloc(size_t bytes);
void cuda_pinned_free(void* ptr);
void cuda_host_access(const void* p, size_t bytes, bool write);
#else
[[noreturn]] static void no_cuda() {
  fail("this difftron was built without CUDA (DIFFTRON_CUDA=OFF or no nvcc found); "
       "rebuild with nvcc available or use runtime.device: cpu");
}
static void* cuda_alloc(int, size_t) { no_cuda(); }
static void cuda_free(void*) { no_cuda(); }
static void cuda_memset_zero(void*, size_t) { no_cuda(); }
static void cuda_copy(void*, bool, const void*, bool, size_t) { no_cuda(); }
static int cuda_count() { return 0; }
static std::string cuda_name(int) { no_cuda(); }
static int64_t cuda_free_bytes(int) { no_cuda(); }
int64_t cuda_allocation_count() { return 0; }
static void cuda_synchronize(int) { no_cuda(); }
static void* cuda_pinned_alloc(size_t) { no_cuda(); }
static void cuda_pinned_free(void*) { no_cuda(); }
static void cuda_host_access(const void*, size_t, bool) {}
#endif

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

void* device_alloc(Device dev, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (!dev.is_cpu()) return cuda_alloc(dev.index, bytes);
  // 64-byte alignment: one cache line, and enough for AVX-512 loads.
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail("out of host memory allocating ", bytes, " bytes");
  return p;
}

void device_free(Device dev, void* ptr) {
  if (!ptr) return;
  if (dev.is_cpu()) std::free(ptr);
  else cuda_free(ptr);
}

void device_memset_zero(Device dev, void* ptr, size_t bytes) {
  if (bytes == 0) return;
  if (dev.is_cpu()) std::memset(ptr, 0, bytes);
  else cuda_memset_zero(ptr, bytes);
}

void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) std::memcpy(dst, src, bytes);
  else cuda_copy(dst, !dst_dev.is_cpu(), src, !src_dev.is_cpu(), bytes);
}

void* host_pinned_alloc(Device dev, size_t bytes) {
  if (bytes == 0) return nullptr;
  return dev.is_cpu() ? device_alloc(dev, bytes) : cuda_pinned_alloc(bytes);
}

void host_pinned_free(Device dev, void* ptr) {
  if (!ptr) return;
  if (dev.is_cpu()) std::free(ptr);
  else cuda_pinned_free(ptr);
}

void host_access(const void* p, size_t bytes, bool write) { cuda_host_access(p, bytes, write); }

void device_synchronize(Device dev) {
  if (!dev.is_cpu()) cuda_synchronize(dev.index);
}

int64_t device_available_bytes(Device dev) {
  if (!dev.is_cpu()) return cuda_free_bytes(dev.index);
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');  // the unit
  }
  return -1;
}

int cuda_device_count() { return cuda_count(); }

std::string cuda_device_name(int index) { return cuda_name(index); }

bool cuda_built() {
#ifdef DIFFTRON_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace dt
