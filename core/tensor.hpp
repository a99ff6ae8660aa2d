// Non-owning tensor views. Memory belongs to an Arena (or a test's buffer);
// a Tensor is a pointer, a dtype, a device and a row-major shape.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/device.hpp"
#include "core/error.hpp"

namespace dt {

// F64 holds step statistics (loss and squared-norm accumulators) on the device.
enum class DType : uint8_t { F32, BF16, I32, F64 };

inline size_t dtype_size(DType t) { return t == DType::BF16 ? 2 : t == DType::F64 ? 8 : 4; }
const char* dtype_name(DType t);

struct Tensor {
  static constexpr int kMaxDims = 4;
  void* ptr = nullptr;
  DType dtype = DType::F32;
  Device device;
  std::array<int64_t, kMaxDims> shape{};
  int ndim = 0;

  Tensor() = default;
  Tensor(void* p, DType t, std::initializer_list<int64_t> dims, Device dev = Device::cpu());

  int64_t numel() const;
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  // Rows of the 2-D view [prod(shape[:-1]), shape[-1]].
  int64_t rows() const { return ndim == 0 ? 1 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  bool defined() const { return ptr != nullptr; }

  float* f32() const;
  int32_t* i32() const;
  double* f64() const;

  // Same memory, new shape (numel must match).
  Tensor view(std::initializer_list<int64_t> dims) const;
  // Rows [begin, end) of the first dimension.
  Tensor slice0(int64_t begin, int64_t end) const;
  std::string shape_str() const;
};

// Views over caller-owned host buffers, for tests and tools.
inline Tensor cpu_f32(float* p, std::initializer_list<int64_t> dims) {
  return Tensor(p, DType::F32, dims);
}
inline Tensor cpu_i32(int32_t* p, std::initializer_list<int64_t> dims) {
  return Tensor(p, DType::I32, dims);
}

}  // namespace dt
