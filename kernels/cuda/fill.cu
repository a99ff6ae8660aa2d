// fill: every element of an f32 device tensor set to one value.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {

namespace {
__global__ void fill_kernel(float* x, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = value;
}
}  // namespace

void fill(Tensor t, float value) {
  require_dtype(t, DType::F32, "fill", "the tensor");
  const int64_t n = t.numel();
  if (n == 0) return;
  const int threads = 256;
  const int blocks = int(std::min<int64_t>(blocks_for(n, threads), 4096));
  DT_LAUNCH(fill_kernel, blocks, threads, 0, static_cast<float*>(t.ptr), n, value);
}

}  // namespace dt::cuda_ops
