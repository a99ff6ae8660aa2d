// Whole-tensor copies and zeroing, on any device.
#include <algorithm>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

void copy(Tensor dst, Tensor src) {
  DT_CHECK(dst.numel() == src.numel(), "copy ", src.shape_str(), " into ", dst.shape_str());
  if (dst.dtype == src.dtype) {
    device_copy(dst.ptr, dst.device, src.ptr, src.device, src.bytes());
    return;
  }
  if (!(dst.device == src.device))
    fail("copy between ", src.device.str(), " and ", dst.device.str(), " needs equal dtypes, got ",
         dtype_name(src.dtype), " and ", dtype_name(dst.dtype));
  DT_ON_CUDA(dst, copy(dst, src));
  fail("copy from ", dtype_name(src.dtype), " to ", dtype_name(dst.dtype), " on the cpu: the CPU backend is f32 only");
}

void fill_zero(Tensor t) { device_memset_zero(t.device, t.ptr, t.bytes()); }

void fill(Tensor t, float value) {
  DT_ON_CUDA(t, fill(t, value));
  std::fill_n(t.f32(), t.numel(), value);
}

}  // namespace dt::ops
