// The CUDA runtime API subset difftron calls, on the host, with the
// asynchrony of a real device: kernels, copies and memsets are queued on their
// stream and run later on the emulated device's worker (device.cpp); the host
// blocks only where the CUDA documentation's "API synchronization behavior"
// says it does:
//   - cudaMemcpy / cudaMemcpyAsync from pageable host memory: the driver waits
//     for the stream, stages the bytes at the call (the buffer is free to
//     reuse at return), and the device writes them later;
//   - device → host into pageable memory, and cudaMemcpy to or from pinned
//     memory: the call returns once the copy has run;
//   - cudaMemcpyAsync to or from pinned memory, device → device copies and
//     memsets: no host synchronisation at all;
//   - cudaFree and cudaFreeHost: wait for the whole device.
// Each of those waits counts in emu::host_sync_count(). Device and pinned
// memory come from memory.cpp (bounds and race checks); copies and memsets
// declare their accesses there. A failed op or a race sets a sticky error
// that every later call returns, as a device fault does.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "device.hpp"
#include "emulated_runtime.hpp"

namespace emu {
namespace {

std::map<const void*, size_t>& smem_opt_in() {
  static std::map<const void*, size_t> m;
  return m;
}

std::mutex error_lock;
cudaError_t last_error = cudaSuccess;
std::string last_message;
int current_device = 0;

cudaError_t fail(cudaError_t code, const std::string& message) {
  record_error(code, message);
  return code;
}

enum class Where { kDevice, kPinned, kPageable };

Where where(const void* p, size_t n) {
  if (in_device_allocation(p, n)) return Where::kDevice;
  if (in_pinned_allocation(p, n)) return Where::kPinned;
  return Where::kPageable;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "HtoH";
    case cudaMemcpyHostToDevice: return "HtoD";
    case cudaMemcpyDeviceToHost: return "DtoH";
    case cudaMemcpyDeviceToDevice: return "DtoD";
    default: return "Default";
  }
}

// Device memory must be where the kind says, and wholly inside one allocation;
// host memory must not be device memory.
cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, const char* fn) {
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_ok = (where(dst, n) == Where::kDevice) == dst_dev, src_ok = (where(src, n) == Where::kDevice) == src_dev;
  if (dst_ok && src_ok) return cudaSuccess;
  const bool dev = dst_ok ? src_dev : dst_dev;
  return fail(cudaErrorInvalidValue, std::string(fn) + " " + kind_name(kind) + " of " + std::to_string(n) +
                                         " bytes: the " + (dst_ok ? "source" : "destination") +
                                         (dev ? " is not device memory, or runs past its allocation"
                                              : " is device memory"));
}

// One copy of n bytes on stream s. `blocking`: cudaMemcpy rather than cudaMemcpyAsync.
cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s, bool blocking,
                 const char* fn) {
  if (cudaError_t e = sticky_error()) return e;
  if (n == 0) return cudaSuccess;
  if (cudaError_t e = check_copy(dst, src, n, kind, fn)) return e;
  const Where from = where(src, n), to = where(dst, n);
  if (from != Where::kDevice && to != Where::kDevice) {  // host to host: synchronous
    std::memmove(dst, src, n);
    return cudaSuccess;
  }
  const std::string name = std::string(fn) + " " + (from == Where::kDevice ? "device" : "host") + "→" +
                           (to == Where::kDevice ? "device" : "host");
  if (from == Where::kPageable) {
    if (cudaError_t e = synchronize_stream(s)) return e;
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + n);
    enqueue(s, name, [dst, staged] {
      access(dst, staged->size(), true);
      std::memcpy(dst, staged->data(), staged->size());
      return Progress::kDone;
    });
    return cudaSuccess;
  }
  const Queued q = enqueue_op(s, name, [dst, src, n] {
    access(src, n, false);
    access(dst, n, true);
    std::memmove(dst, src, n);
    return Progress::kDone;
  });
  const bool host_waits = to == Where::kPageable || (blocking && (from == Where::kPinned || to == Where::kPinned));
  return host_waits ? wait_for(q) : cudaSuccess;
}

cudaError_t memset_op(void* p, int value, size_t n, cudaStream_t s, const char* fn) {
  if (cudaError_t e = sticky_error()) return e;
  if (n == 0) return cudaSuccess;
  if (!in_device_allocation(p, n))
    return fail(cudaErrorInvalidValue,
                std::string(fn) + " of " + std::to_string(n) + " bytes outside a device allocation");
  enqueue(s, fn, [p, value, n] {
    access(p, n, true);
    std::memset(p, value, n);
    return Progress::kDone;
  });
  return cudaSuccess;
}

}  // namespace

void record_error(cudaError_t code, const std::string& message) {
  std::lock_guard<std::mutex> l(error_lock);
  last_error = code;
  last_message = message;
}

size_t opted_in_smem(const void* kernel) {
  auto it = smem_opt_in().find(kernel);
  return it == smem_opt_in().end() ? 0 : it->second;
}

bool in_device_allocation(const void* p, size_t bytes) { return mem::inside(p, bytes, mem::Kind::kDevice); }
bool in_pinned_allocation(const void* p, size_t bytes) { return mem::inside(p, bytes, mem::Kind::kPinned); }

}  // namespace emu

using emu::fail;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0)
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): the emulation has one device");
  emu::current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = emu::current_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: the emulation has one device");
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "difftron CUDA emulation");  // in no datasheet table
  prop->major = 8;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->sharedMemPerBlock = emu::kDefaultSmem;
  prop->sharedMemPerBlockOptin = emu::kMaxOptInSmem;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->totalGlobalMem = size_t(16) << 30;
  return cudaSuccess;
}
// Two attributes the kernels size grids by; one multiprocessor, as the properties say.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: the emulation has one device");
  if (attr == cudaDevAttrMultiProcessorCount) {
    *value = 1;
  } else if (attr == cudaDevAttrMaxThreadsPerMultiProcessor) {
    *value = 2048;
  } else if (attr == cudaDevAttrMaxSharedMemoryPerBlockOptin) {
    *value = int(emu::kMaxOptInSmem);
  } else {
    return fail(cudaErrorInvalidValue,
                "cudaDeviceGetAttribute: attribute " + std::to_string(int(attr)) + " is not emulated");
  }
  return cudaSuccess;
}
// Blocks per multiprocessor from threads (2048 per SM) and shared memory (the
// sm_80 opt-in maximum per SM) only: registers are not modelled.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void*, int block_size, size_t smem) {
  if (block_size <= 0 || block_size > 1024)
    return fail(cudaErrorInvalidValue, "cudaOccupancyMaxActiveBlocksPerMultiprocessor: block size " +
                                           std::to_string(block_size));
  const size_t by_smem = smem ? (emu::kMaxOptInSmem + 1024) / (smem + 1024) : 32;  // 1 KB reserved per block
  *blocks = int(std::min<size_t>({size_t(2048 / block_size), by_smem, 32}));
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  *free = *total = size_t(16) << 30;  // as totalGlobalMem; the emulation does not count what is allocated
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return emu::synchronize_device(); }

cudaError_t cudaMalloc(void** p, size_t n) {
  if (cudaError_t e = emu::sticky_error()) return e;
  *p = emu::mem::allocate(n, emu::mem::Kind::kDevice);
  return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(n) + " bytes");
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  emu::synchronize_device();  // cudaFree waits for the device (no kernel may still use p)
  if (!emu::mem::release(p, emu::mem::Kind::kDevice))
    return fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
  return emu::sticky_error();
}
cudaError_t cudaMallocHost(void** p, size_t n) {
  if (cudaError_t e = emu::sticky_error()) return e;
  *p = emu::mem::allocate(n, emu::mem::Kind::kPinned);
  return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation, "cudaMallocHost of " + std::to_string(n) + " bytes");
}
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned int) { return cudaMallocHost(p, n); }
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  emu::synchronize_device();
  if (!emu::mem::release(p, emu::mem::Kind::kPinned))
    return fail(cudaErrorInvalidValue, "cudaFreeHost of a pointer cudaMallocHost did not return");
  return emu::sticky_error();
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return emu::copy(dst, src, n, kind, nullptr, true, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  return emu::copy(dst, src, n, kind, s, false, "cudaMemcpyAsync");
}
cudaError_t cudaMemset(void* p, int value, size_t n) { return emu::memset_op(p, value, n, nullptr, "cudaMemset"); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s) {
  return emu::memset_op(p, value, n, s, "cudaMemsetAsync");
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return fail(cudaErrorInvalidValue,
                "cudaFuncSetAttribute: only cudaFuncAttributeMaxDynamicSharedMemorySize is emulated");
  if (value < 0 || size_t(value) > emu::kMaxOptInSmem)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                           " bytes of dynamic shared memory exceed the sm_80 limit");
  emu::smem_opt_in()[kernel] = size_t(value);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  if (cudaError_t e = emu::sticky_error()) return e;
  std::lock_guard<std::mutex> l(emu::error_lock);
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  if (cudaError_t e = emu::sticky_error()) return e;
  std::lock_guard<std::mutex> l(emu::error_lock);
  return emu::last_error;
}
const char* cudaGetErrorString(cudaError_t e) {
  static thread_local std::string s;
  if (e == cudaSuccess) return "no error";
  if (e == emu::sticky_error()) s = "emulated CUDA error " + std::to_string(int(e)) + ": " + emu::sticky_message();
  else s = "emulated CUDA error " + std::to_string(int(e)) + ": " + emu::last_message;
  return s.c_str();
}

// ---- streams ------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = emu::create_stream(false);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  *s = emu::create_stream((flags & cudaStreamNonBlocking) != 0);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) { return emu::destroy_stream(s); }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return emu::synchronize_stream(s); }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  emu::stream_wait_event(s, reinterpret_cast<const emu::Event*>(e));
  return emu::sticky_error();
}

// ---- events -------------------------------------------------------------------------
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new emu::Event);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (cudaError_t err = emu::sticky_error()) return err;
  emu::record_event(reinterpret_cast<emu::Event*>(e), s);
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return emu::synchronize_event(reinterpret_cast<const emu::Event*>(e));
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  if (cudaError_t err = emu::sticky_error()) return err;
  return emu::event_done(reinterpret_cast<const emu::Event*>(e)) ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  const auto *a = reinterpret_cast<const emu::Event*>(start), *b = reinterpret_cast<const emu::Event*>(stop);
  if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: not recorded");
  if (!emu::event_done(a) || !emu::event_done(b)) return cudaErrorNotReady;
  *ms = float(*b->time_ms - *a->time_ms);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<emu::Event*>(e);
  return cudaSuccess;
}

}  // extern "C"
