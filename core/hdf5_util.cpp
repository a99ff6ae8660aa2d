#include "core/hdf5_util.hpp"

#include <vector>

namespace dt {

// HDF5 closes every id still open in an atexit handler. After a failed write
// (disk full) a file whose close failed stays open, and that handler then
// crashes (HDF5 1.10) or loops; our handles close everything they opened, so
// the process needs no such handler. It must be turned off before any other
// HDF5 call: at static initialisation.
static const bool kNoHdf5Atexit = [] {
  H5dont_atexit();
  return true;
}();

void h5_silence_errors() {
  // Debian's HDF5 is built thread-safe, and then each thread has its own error
  // stack and printing setting: silence every thread that makes HDF5 calls.
  thread_local bool silenced = false;
  if (!silenced) H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

void h5_clear_errors() { H5Eclear2(H5E_DEFAULT); }

void h5_write_attr_string(hid_t obj, const char* name, const std::string& value) {
  // Fixed-length, null-terminated ASCII: readable by h5dump, h5py and our reader alike.
  H5Handle type(H5_CHECK(H5Tcopy(H5T_C_S1), name), H5Tclose);
  H5_CHECK(H5Tset_size(type.get(), value.size() + 1), name);
  H5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), name);
  H5Handle space(H5_CHECK(H5Screate(H5S_SCALAR), name), H5Sclose);
  H5Handle attr(H5_CHECK(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name),
                H5Aclose);
  H5_CHECK(H5Awrite(attr.get(), type.get(), value.c_str()), name);
}

void h5_write_attr_int(hid_t obj, const char* name, int64_t value) {
  H5Handle space(H5_CHECK(H5Screate(H5S_SCALAR), name), H5Sclose);
  H5Handle attr(H5_CHECK(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), name),
                H5Aclose);
  H5_CHECK(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), name);
}

namespace {

// Opens an attribute if it exists, is scalar (or one element) and has the wanted class.
H5Handle open_attr(hid_t obj, const char* name, H5T_class_t want) {
  if (H5Aexists(obj, name) <= 0) return {};
  H5Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!attr) return {};
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  H5Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!type || !space || H5Tget_class(type.get()) != want) return {};
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return {};
  return attr;
}

}  // namespace

std::optional<std::string> h5_read_attr_string(hid_t obj, const char* name) {
  H5Handle attr = open_attr(obj, name, H5T_STRING);
  if (!attr) return std::nullopt;
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tis_variable_str(type.get()) > 0) {
    // Written by another tool (e.g. h5py's default str); read it as a C string.
    H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* s = nullptr;
    if (H5Aread(attr.get(), mem.get(), &s) < 0 || !s) return std::nullopt;
    std::string out(s);
    H5free_memory(s);
    return out;
  }
  size_t n = H5Tget_size(type.get());
  std::vector<char> buf(n + 1, '\0');
  H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), n + 1);
  if (H5Aread(attr.get(), mem.get(), buf.data()) < 0) return std::nullopt;
  return std::string(buf.data());
}

std::optional<int64_t> h5_read_attr_int(hid_t obj, const char* name) {
  H5Handle attr = open_attr(obj, name, H5T_INTEGER);
  if (!attr) return std::nullopt;
  int64_t v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) return std::nullopt;
  return v;
}

}  // namespace dt
