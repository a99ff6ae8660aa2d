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
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
// Waits until every kernel queued on the device has finished (no-op on the CPU).
void device_synchronize(Device dev);

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
