// Reads a plain or gzip-compressed input file (zlib tells them apart by the
// gzip header, so both go through one path). Errors name the file.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dt {

class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // The next line without its '\n' (and without a trailing '\r'); false at the end.
  bool read_line(std::string& line);
  // Everything not read yet.
  std::string read_all();
  // 1-based number of the line read_line returned last.
  int64_t line_number() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  bool fill();  // reads more into buf_; false at the end

  std::string path_;
  gzFile gz_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  int64_t line_ = 0;
};

}  // namespace dt
