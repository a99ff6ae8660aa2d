// Device scratch of the attention ops (kernels/cuda/flash_attention.cuh): one
// buffer per slot, grown only when a larger size is asked, so steady-state
// steps neither allocate nor synchronise. The process drives one GPU (one rank
// per device), so the buffers live on the current device.
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops::flash {

void* scratch(AttnScratch slot, size_t bytes) {
  static void* ptr[kAttnScratchSlots] = {};
  static size_t cap[kAttnScratchSlots] = {};
  if (bytes > cap[slot]) {
    if (ptr[slot]) {
      // Kernels queued earlier may still use the old buffer: growing (rare)
      // waits for them before freeing it.
      CUDA_CHECK(cudaDeviceSynchronize());
      CUDA_CHECK(cudaFree(ptr[slot]));
      ptr[slot] = nullptr;
      cap[slot] = 0;
    }
    CUDA_CHECK(cudaMalloc(&ptr[slot], bytes));
    cap[slot] = bytes;
  }
  return ptr[slot];
}

DeviceScalars* device_scalars() {
  return static_cast<DeviceScalars*>(scratch(kAttnScalars, sizeof(DeviceScalars)));
}

}  // namespace dt::cuda_ops::flash
