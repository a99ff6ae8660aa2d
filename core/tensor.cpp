#include "core/tensor.hpp"

#include "core/emulation_hooks.hpp"

namespace dt {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::F64: return "f64";
  }
  return "?";
}

Tensor::Tensor(void* p, DType t, std::initializer_list<int64_t> dims, Device dev)
    : ptr(p), dtype(t), device(dev) {
  DT_CHECK(int(dims.size()) <= kMaxDims, "too many dimensions");
  for (int64_t d : dims) shape[ndim++] = d;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

// A tensor said to be on the CPU must not point at GPU memory: the host would
// fault on a GPU (under the CUDA emulation, which maps device memory into the
// process, this is where it is caught).
static void check_host_data(const Tensor& t) {
  if (t.device.is_cpu() && DT_IS_DEVICE_MEMORY(t.ptr))
    fail("a tensor ", t.shape_str(), " marked as on the cpu points at CUDA device memory; the host must not "
         "read or write device memory (tag the view with its device, or copy it to the host)");
}

float* Tensor::f32() const {
  DT_CHECK(dtype == DType::F32, "expected f32 tensor, got ", dtype_name(dtype));
  check_host_data(*this);
  return static_cast<float*>(ptr);
}

double* Tensor::f64() const {
  DT_CHECK(dtype == DType::F64, "expected f64 tensor, got ", dtype_name(dtype));
  check_host_data(*this);
  return static_cast<double*>(ptr);
}

int32_t* Tensor::i32() const {
  DT_CHECK(dtype == DType::I32, "expected i32 tensor, got ", dtype_name(dtype));
  check_host_data(*this);
  return static_cast<int32_t*>(ptr);
}

Tensor Tensor::view(std::initializer_list<int64_t> dims) const {
  Tensor t(ptr, dtype, dims, device);
  DT_CHECK(t.numel() == numel(), "view ", t.shape_str(), " of ", shape_str());
  return t;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  DT_CHECK(ndim >= 1 && 0 <= begin && begin <= end && end <= shape[0]);
  Tensor t = *this;
  int64_t inner = numel() / shape[0];
  t.ptr = static_cast<char*>(ptr) + size_t(begin * inner) * dtype_size(dtype);
  t.shape[0] = end - begin;
  return t;
}

std::string Tensor::shape_str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

}  // namespace dt
