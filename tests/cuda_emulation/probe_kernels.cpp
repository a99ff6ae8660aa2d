// Kernels for the emulator's own tests (test_emulation.cpp), compiled like
// kernels/cuda/*.cu (instrumented, tests/CMakeLists.txt), so their loads and
// stores reach the emulation's checks as the real kernels' do.
#include "kernels/cuda/cuda_common.cuh"

namespace emu_probe {
namespace {

// 16 bytes from src to dst with the kernels' one-access helpers.
__global__ void copy16_kernel(const void* src, void* dst) {
  dt::cuda_ops::st16(dst, dt::cuda_ops::ld16(src));
}

}  // namespace

void copy16(const void* src, void* dst) { DT_LAUNCH(copy16_kernel, 1, 1, 0, src, dst); }

}  // namespace emu_probe
