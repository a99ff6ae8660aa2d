// Host-side state shared by the emulated CUDA runtime (runtime.cpp), the
// launcher (launch.cpp) and the emulated cuBLASLt (cublaslt.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace emu {

// The error the next cudaGetLastError returns, with the message
// cudaGetErrorString gives for it.
void record_error(cudaError_t code, const std::string& message);

// Dynamic shared memory a kernel opted into with cudaFuncSetAttribute (0 if none).
size_t opted_in_smem(const void* kernel);

// Whether [p, p + bytes) lies inside one live cudaMalloc allocation.
bool in_device_allocation(const void* p, size_t bytes);

// The largest dynamic shared memory a block may opt into on sm_80, the
// smallest of the targeted architectures (163 KB).
constexpr size_t kMaxOptInSmem = 166912;
constexpr size_t kDefaultSmem = 48 * 1024;

}  // namespace emu
