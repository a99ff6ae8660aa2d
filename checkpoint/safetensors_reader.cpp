#include "checkpoint/safetensors_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/json.hpp"

namespace dt {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float f16_to_float(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(float(mant), -24);                              // zero, subnormal
  else if (exp == 31) v = mant ? std::nanf("") : INFINITY;                      // inf, NaN
  else v = std::ldexp(float(mant | 0x400), exp - 25);                           // 1.mant · 2^(exp−15)
  return sign ? -v : v;
}

namespace {

int64_t dtype_bytes(const std::string& dtype) { return dtype == "F32" ? 4 : dtype == "BF16" || dtype == "F16" ? 2 : 0; }

void pread_all(int fd, void* buf, size_t bytes, int64_t offset, const std::string& path) {
  char* p = static_cast<char*>(buf);
  while (bytes > 0) {
    const ssize_t got = ::pread(fd, p, bytes, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail(path, ": cannot read ", bytes, " bytes at offset ", offset, got < 0 ? ": " : " (truncated)",
                       got < 0 ? std::strerror(errno) : "");
    p += got, bytes -= size_t(got), offset += got;
  }
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, ": cannot open: ", std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) fail(path, ": not a regular file");
    const int64_t size = st.st_size;
    uint8_t len_bytes[8];
    if (size < 8) fail(path, ": ", size, " bytes, too short for a safetensors file (8-byte header length)");
    pread_all(fd_, len_bytes, 8, 0, path);
    uint64_t n = 0;
    for (int b = 0; b < 8; ++b) n |= uint64_t(len_bytes[b]) << (8 * b);
    if (n > uint64_t(size - 8)) fail(path, ": header length ", n, " runs past the end of the file (", size, " bytes)");
    std::string text(size_t(n), '\0');
    pread_all(fd_, text.data(), text.size(), 8, path);
    const Json h = parse_json(text, path);
    if (!h.is_object()) fail(path, ": header is ", json_kind(h), ", expected a JSON object");
    const int64_t data0 = 8 + int64_t(n), data_bytes = size - data0;
    for (const auto& [name, e] : h.items()) {
      if (name == "__metadata__") continue;
      const std::string where = path + ": tensor " + name;
      if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
          !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
          e["data_offsets"].size() != 2)
        fail(where, ": expected {\"dtype\", \"shape\", \"data_offsets\": [begin, end]}");
      SafetensorsTensor t;
      t.dtype = e["dtype"].get<std::string>();
      if (dtype_bytes(t.dtype) == 0) fail(where, ": dtype ", t.dtype, " is not supported; expected F32, BF16 or F16");
      for (const Json& d : e["shape"]) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 40))
          fail(where, ": shape ", json_text_of(e["shape"]), " is not a list of sizes");
        t.shape.push_back(d.get<int64_t>());
      }
      int64_t count = 1;
      for (int64_t d : t.shape)
        if (__builtin_mul_overflow(count, d, &count) || count > (int64_t(1) << 60))
          fail(where, ": shape ", json_text_of(e["shape"]), " holds more elements than any file");
      const Json& o = e["data_offsets"];
      if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned())
        fail(where, ": data_offsets ", json_text_of(o), " are not byte offsets");
      const uint64_t b = o[0].get<uint64_t>(), end = o[1].get<uint64_t>();
      if (b > end || end > uint64_t(data_bytes) || int64_t(end - b) != t.numel() * dtype_bytes(t.dtype))
        fail(where, ": data_offsets ", json_text_of(o), " do not hold ", t.numel(), " ", t.dtype,
             " elements inside the ", data_bytes, " data bytes");
      t.offset = data0 + int64_t(b);
      tensors_.emplace(name, std::move(t));
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), tensors_(std::move(o.tensors_)) {
  o.fd_ = -1;
}

void SafetensorsFile::read(const std::string& name, int64_t e0, int64_t n, float* out) const {
  const auto it = tensors_.find(name);
  DT_CHECK(it != tensors_.end(), path_, ": no tensor ", name);
  const SafetensorsTensor& t = it->second;
  DT_CHECK(e0 >= 0 && n >= 0 && e0 + n <= t.numel(), name, ": elements ", e0, "+", n, " of ", t.numel());
  const int64_t eb = dtype_bytes(t.dtype);
  if (t.dtype == "F32") return pread_all(fd_, out, size_t(n) * 4, t.offset + e0 * eb, path_);
  std::vector<uint16_t> bits(static_cast<size_t>(n));
  pread_all(fd_, bits.data(), size_t(n) * 2, t.offset + e0 * eb, path_);
  for (int64_t i = 0; i < n; ++i)
    out[i] = t.dtype == "BF16" ? std::bit_cast<float>(uint32_t(bits[size_t(i)]) << 16) : f16_to_float(bits[size_t(i)]);
}

}  // namespace dt
