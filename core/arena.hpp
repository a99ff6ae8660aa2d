// A contiguous block of device memory handed out as tensor views. Building a
// model runs its layout twice: once against a measuring arena (no memory, just
// offsets) and once against the allocated one, so every parameter, gradient
// and activation lives in a few blocks and the step never allocates.
#pragma once
#include <cstddef>
#include <initializer_list>

#include "core/tensor.hpp"

namespace dt {

class Arena {
 public:
  Arena() = default;
  explicit Arena(Device dev) : dev_(dev) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& o) noexcept;
  Arena& operator=(Arena&& o) noexcept;

  // Measuring mode: alloc() returns tensors with null data and counts bytes.
  void begin_measure() { measuring_ = true; used_ = 0; }
  // Allocates what was measured (zeroed) and rewinds, ready for the real pass.
  void commit();
  void rewind() { used_ = 0; }

  Tensor alloc(DType t, std::initializer_list<int64_t> dims);
  Tensor alloc_f32(std::initializer_list<int64_t> dims) { return alloc(DType::F32, dims); }

  void zero();
  char* base() const { return base_; }
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  Device device() const { return dev_; }

 private:
  Device dev_;
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  bool measuring_ = false;
};

}  // namespace dt
