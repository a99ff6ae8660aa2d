// Where a tensor lives. The CPU backend is always built; the CUDA parts are
// compiled when nvcc is found (DIFFTRON_HAVE_CUDA) and otherwise fail with a
// clear message at the first use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dt {

enum class DeviceKind { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  static Device cpu() { return {}; }
  static Device cuda(int i) { return {DeviceKind::CUDA, i}; }
  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  std::string str() const;
};

void* device_alloc(Device dev, size_t bytes);
void device_free(Device dev, void* ptr);
void device_memset_zero(Device dev, void* ptr, size_t bytes);
// Between devices, in the order of the work queued on the compute stream. The
// host side of a copy to or from a GPU may be pageable (the call then returns
// once the bytes are staged, or copied back) or pinned (host_pinned_alloc: the
// copy is asynchronous, and the host must not touch the buffer until it has
// synchronised with the device).
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
// Page-locked host memory for asynchronous copies to and from `dev` (ordinary
// host memory when dev is the CPU).
void* host_pinned_alloc(Device dev, size_t bytes);
void host_pinned_free(Device dev, void* ptr);
// The host is about to read or write pinned memory that device work may use:
// a no-op, except under the CUDA emulation, which checks that the host has
// synchronised with every copy that touches it (a race otherwise).
void host_access(const void* p, size_t bytes, bool write);
// A page-locked host buffer for asynchronous copies to and from `dev`
// (ordinary host memory when dev is the CPU); move-only.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(Device dev, size_t bytes) : dev_(dev), ptr_(host_pinned_alloc(dev, bytes)), bytes_(bytes) {}
  ~PinnedBuffer() { host_pinned_free(dev_, ptr_); }
  PinnedBuffer(PinnedBuffer&& o) noexcept { *this = static_cast<PinnedBuffer&&>(o); }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      host_pinned_free(dev_, ptr_);
      dev_ = o.dev_, ptr_ = o.ptr_, bytes_ = o.bytes_;
      o.ptr_ = nullptr, o.bytes_ = 0;
    }
    return *this;
  }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  Device dev_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Waits until every kernel queued on the device has finished (no-op on the CPU).
void device_synchronize(Device dev);

// Bytes that allocations on `dev` can still get: for the CPU the host's
// MemAvailable (/proc/meminfo; shared by every process on the machine), for a
// GPU its free memory (cudaMemGetInfo); -1 when the figure cannot be read.
int64_t device_available_bytes(Device dev);

// Number of visible CUDA devices; 0 when CUDA is not built or no GPU/driver is
// present (any cudaGetDeviceCount failure counts as "no GPU").
int cuda_device_count();
// The device's name as cudaGetDeviceProperties gives it, e.g. "NVIDIA H100 80GB HBM3";
// fails without CUDA or without that device.
std::string cuda_device_name(int index);
// How many cudaMalloc calls difftron has made in this process (0 without CUDA);
// a training step after the first must not add any.
int64_t cuda_allocation_count();
bool cuda_built();

}  // namespace dt
