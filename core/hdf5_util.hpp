// Thin helpers over the HDF5 C API: every call is checked (H5_CHECK), every
// handle is closed by its owner (H5Handle), and root attributes are read and
// written in one place. The serial HDF5 library is not thread-safe: one thread
// at a time may make HDF5 calls.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace dt {

// Turns off HDF5's own error-stack printing (it would print dozens of lines to
// stderr for a bad file) on the calling thread; our callers report one line
// instead. The library keeps the switch per thread, so every thread that makes
// HDF5 calls calls this once (more calls are free).
void h5_silence_errors();

// Drops the calling thread's HDF5 error records, as every failure we turn into
// a dt::Error does before throwing: records left on a thread that then ends
// keep library ids alive, and HDF5's shutdown at exit reports them as
// "infinite loop closing library" after our one line.
void h5_clear_errors();

// Fails with file:line, the failing call and a hint when an HDF5 call returns
// a negative id or status; returns the value otherwise.
template <typename T>
T h5_checked(T value, const char* call, const char* file, int line, const std::string& hint) {
  if (value < 0) {
    h5_clear_errors();
    fail(file, ":", line, ": HDF5 call failed: ", call, " (", hint, ")");
  }
  return value;
}
#define H5_CHECK(call, hint) ::dt::h5_checked((call), #call, __FILE__, __LINE__, (hint))

// Owns one hid_t and closes it with the matching H5?close.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = -1;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() { reset(); }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now; returns the close status (negative on failure, e.g. a failed flush).
  herr_t reset() {
    herr_t st = 0;
    if (id_ >= 0 && closer_) st = closer_(id_);
    id_ = -1;
    return st;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Root (or any object's) attributes. Writers fail via H5_CHECK; readers return
// nullopt when the attribute is missing or has the wrong class (string vs integer).
void h5_write_attr_string(hid_t obj, const char* name, const std::string& value);
void h5_write_attr_int(hid_t obj, const char* name, int64_t value);
std::optional<std::string> h5_read_attr_string(hid_t obj, const char* name);
std::optional<int64_t> h5_read_attr_int(hid_t obj, const char* name);

}  // namespace dt
