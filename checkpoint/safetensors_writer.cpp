#include "checkpoint/safetensors_writer.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/json.hpp"
#include "checkpoint/checkpoint.hpp"

namespace dt {

namespace fs = std::filesystem;

// The data is written as the host holds it; safetensors is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors export assumes a little-endian host");

namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void put_u64_le(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

}  // namespace

uint16_t bf16_bits_rne(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN: keep it a (quiet) NaN
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry into
  // the exponent is the correct rounding (up to inf on overflow).
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

int64_t safetensors_dtype_bytes(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "BF16") return 2;
  fail("safetensors: dtype ", dtype, " is not written; expected F32 or BF16");
}

std::string safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  Json h = Json::object();  // ordered: __metadata__ first, then the tensors in file order
  if (!metadata.empty()) {
    Json& m = h["__metadata__"];
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  int64_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    if (t.name == "__metadata__") fail("safetensors: a tensor may not be named __metadata__");
    if (h.contains(t.name)) fail("safetensors: tensor ", t.name, " is declared twice");
    const int64_t end = offset + numel_of(t.shape) * safetensors_dtype_bytes(t.dtype);
    h[t.name] = Json{{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = json_text_of(h);  // compact, as the safetensors files of other tools
  // 8 length bytes + N header bytes: N a multiple of 8 puts the data on an 8-byte boundary.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<SafetensorsEntry> tensors,
                                     const std::vector<std::pair<std::string, std::string>>& metadata)
    : path_(path), tmp_(temp_name_for(path)), tensors_(std::move(tensors)) {
  const std::string header = safetensors_header(tensors_, metadata);
  std::string prefix;
  put_u64_le(prefix, header.size());
  const int fd = create_exclusive(tmp_);
  out_ = ::fdopen(fd, "wb");
  if (!out_) {
    ::close(fd);
    ::unlink(tmp_.c_str());
    fail("cannot open ", tmp_, " for writing");
  }
  try {
    put(prefix.data(), prefix.size());
    put(header.data(), header.size());
  } catch (const Error&) {
    std::fclose(out_);  // no destructor runs after a throwing constructor
    ::unlink(tmp_.c_str());
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (done_) return;
  if (out_) std::fclose(out_);
  ::unlink(tmp_.c_str());  // this writer created it
}

void SafetensorsWriter::put(const void* data, size_t bytes) {
  if (std::fwrite(data, 1, bytes, out_) != bytes) fail("cannot write ", tmp_, " (disk full?)");
  bytes_ += int64_t(bytes);
}

void SafetensorsWriter::write(const std::string& name, const float* data, int64_t numel) {
  DT_CHECK(next_ < tensors_.size(), "safetensors: more tensors written than declared");
  const SafetensorsEntry& t = tensors_[next_];
  DT_CHECK(t.name == name && numel_of(t.shape) == numel, "safetensors: expected ", t.name, ", got ", name);
  if (t.dtype == "F32") {
    put(data, size_t(numel) * sizeof(float));
  } else {
    // In blocks, so a large tensor is not held twice.
    std::vector<uint16_t> bits;
    for (int64_t i = 0; i < numel; i += 1 << 16) {
      const int64_t n = std::min<int64_t>(numel - i, 1 << 16);
      bits.resize(size_t(n));
      for (int64_t k = 0; k < n; ++k) bits[size_t(k)] = bf16_bits_rne(data[i + k]);
      put(bits.data(), size_t(n) * sizeof(uint16_t));
    }
  }
  ++next_;
}

void SafetensorsWriter::finish() {
  DT_CHECK(next_ == tensors_.size(), "safetensors: ", tensors_.size() - next_, " tensors not written");
  if (std::fflush(out_) != 0 || ::fsync(::fileno(out_)) != 0) fail("cannot write ", tmp_, " (disk full?)");
  const int closed = std::fclose(out_);
  out_ = nullptr;
  if (closed != 0) fail("cannot close ", tmp_, " (disk full?)");
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) fail("cannot rename ", tmp_, " to ", path_, ": ", ec.message());
  done_ = true;
}

}  // namespace dt
