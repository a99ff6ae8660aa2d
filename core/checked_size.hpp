// A byte or element count computed from user input (a config's d_model, a
// command's --seq-len) in 64 bits that remembers an overflow instead of
// wrapping, so that the caller refuses it with one line naming the input.
#pragma once
#include <cstdint>

namespace dt {

class CheckedSize {
 public:
  CheckedSize(int64_t v = 0) : v_(v), overflow_(v < 0) {}  // NOLINT: a count converts implicitly

  friend CheckedSize operator*(CheckedSize a, CheckedSize b) {
    CheckedSize r;
    r.overflow_ = a.overflow_ || b.overflow_ || __builtin_mul_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedSize operator+(CheckedSize a, CheckedSize b) {
    CheckedSize r;
    r.overflow_ = a.overflow_ || b.overflow_ || __builtin_add_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedSize operator/(CheckedSize a, int64_t b) {  // b > 0: cannot overflow
    if (!a.overflow_) a.v_ /= b;
    return a;
  }
  CheckedSize& operator*=(CheckedSize b) { return *this = *this * b; }
  CheckedSize& operator+=(CheckedSize b) { return *this = *this + b; }
  // The next multiple of `unit` (> 0) at or above this count.
  CheckedSize round_up(int64_t unit) const {
    CheckedSize r = *this + (unit - 1);
    if (!r.overflow_) r.v_ = r.v_ / unit * unit;
    return r;
  }

  bool overflowed() const { return overflow_; }
  // The count; meaningless (0) once overflowed() is true.
  int64_t value() const { return overflow_ ? 0 : v_; }

 private:
  int64_t v_ = 0;
  bool overflow_ = false;
};

}  // namespace dt
