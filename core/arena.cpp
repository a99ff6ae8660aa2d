#include "core/arena.hpp"

#include <utility>

namespace dt {

Arena::~Arena() { device_free(dev_, base_); }

Arena::Arena(Arena&& o) noexcept { *this = std::move(o); }

Arena& Arena::operator=(Arena&& o) noexcept {
  if (this != &o) {
    device_free(dev_, base_);
    dev_ = o.dev_;
    base_ = std::exchange(o.base_, nullptr);
    capacity_ = std::exchange(o.capacity_, 0);
    used_ = std::exchange(o.used_, 0);
    measuring_ = std::exchange(o.measuring_, false);
  }
  return *this;
}

void Arena::commit() {
  DT_CHECK(measuring_, "commit() without begin_measure()");
  device_free(dev_, base_);
  capacity_ = used_;
  base_ = static_cast<char*>(device_alloc(dev_, capacity_));
  device_memset_zero(dev_, base_, capacity_);
  measuring_ = false;
  used_ = 0;
}

Tensor Arena::alloc(DType t, std::initializer_list<int64_t> dims) {
  Tensor view(nullptr, t, dims, dev_);
  size_t offset = (used_ + 63) / 64 * 64;  // every tensor starts on a cache line
  used_ = offset + view.bytes();
  if (measuring_) return view;
  DT_CHECK(used_ <= capacity_, "arena overflow: layout changed between measure and build");
  view.ptr = base_ + offset;
  return view;
}

void Arena::zero() { device_memset_zero(dev_, base_, capacity_); }

}  // namespace dt
