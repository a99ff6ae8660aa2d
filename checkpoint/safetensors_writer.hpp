// A safetensors file writer (fp32, or bf16 rounded to nearest even). The format:
//   [8 bytes: N, little-endian u64]
//   [N bytes: JSON header {"__metadata__": {str: str}, "<name>": {"dtype": "F32" or "BF16",
//             "shape": [...], "data_offsets": [begin, end]}, ...}, padded with
//             spaces so the data starts on an 8-byte boundary]
//   [the tensors' raw little-endian bytes, contiguous, offsets relative to here]
// The header is fixed up front from the names and shapes, so the data can be
// streamed one tensor at a time (a 3B model never sits in memory twice).
// Written to a new temporary <path>.tmp.<pid>.<ns> beside it (create_exclusive: never
// through an existing name), fsynced, then renamed: a reader never sees half
// a file, and whatever was at <path> is replaced, not written through.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace dt {

struct SafetensorsEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype = "F32";  // or "BF16": write() rounds each float to nearest even
};

// bf16 bits of x rounded to nearest even (ties to even; overflow to ±inf; NaN stays a NaN).
uint16_t bf16_bits_rne(float x);
// Bytes of one element of a safetensors dtype this writer produces (F32 4, BF16 2).
int64_t safetensors_dtype_bytes(const std::string& dtype);

// The whole header (JSON plus padding) for these tensors, laid out in the
// given order; exposed so tests can check the layout without writing a file.
std::string safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata);

class SafetensorsWriter {
 public:
  // Creates the temporary and writes the length and header.
  SafetensorsWriter(const std::string& path, std::vector<SafetensorsEntry> tensors,
                    const std::vector<std::pair<std::string, std::string>>& metadata);
  // Removes the temporary unless finish() succeeded.
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next tensor's data, in the order given to the constructor, converted
  // to its entry's dtype.
  void write(const std::string& name, const float* data, int64_t numel);
  // Checks every tensor was written, fsyncs and renames the temporary to <path>.
  void finish();
  int64_t bytes_written() const { return bytes_; }

 private:
  void put(const void* data, size_t bytes);

  std::string path_, tmp_;
  std::vector<SafetensorsEntry> tensors_;
  size_t next_ = 0;
  int64_t bytes_ = 0;
  std::FILE* out_ = nullptr;  // the temporary, created by this writer
  bool done_ = false;
};

}  // namespace dt
