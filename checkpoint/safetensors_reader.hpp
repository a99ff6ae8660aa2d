// Reading safetensors files (the layout is in safetensors_writer.hpp) as
// untrusted input: the header is checked whole when the file is opened
// (its length inside the file, JSON, every tensor's dtype F32, BF16 or F16, a
// shape of sizes >= 0 and a byte range inside the data that holds exactly
// shape × element size), then any element range of a tensor is read as
// floats without reading the rest of the file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dt {

struct SafetensorsTensor {
  std::string dtype;            // F32, BF16 or F16
  std::vector<int64_t> shape;
  int64_t offset = 0;           // of its first byte in the file
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Opens and checks the header; one-line errors name the path and tensor.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& o) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(SafetensorsFile&&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  // Row-major elements [e0, e0 + n) of tensor `name` as floats (bf16 and f16 exactly).
  void read(const std::string& name, int64_t e0, int64_t n, float* out) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::map<std::string, SafetensorsTensor> tensors_;
};

// An IEEE half's bits as a float (exact: every half is a float).
float f16_to_float(uint16_t h);

}  // namespace dt
