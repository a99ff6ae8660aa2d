#include "checkpoint/safetensors_writer.hpp"

#include <unistd.h>

#include <bit>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
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

std::string json_quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += char(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return o + "\"";
}

std::string safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i) h += ',';
      h += json_quote(metadata[i].first) + ":" + json_quote(metadata[i].second);
    }
    h += "}";
  }
  int64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry& t = tensors[i];
    if (t.name == "__metadata__") fail("safetensors: a tensor may not be named __metadata__");
    const int64_t end = offset + numel_of(t.shape) * int64_t(sizeof(float));
    if (i || !metadata.empty()) h += ',';
    h += json_quote(t.name) + ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t j = 0; j < t.shape.size(); ++j) {
      if (j) h += ',';
      h += std::to_string(t.shape[j]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  h += "}";
  // 8 length bytes + N header bytes: N a multiple of 8 puts the data on an 8-byte boundary.
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
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
  put(data, size_t(numel) * sizeof(float));
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
