#include "data/input_file.hpp"

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace dt {

InputFile::InputFile(const std::string& path) : path_(path), buf_(1 << 20) {
  gz_ = gzopen(path.c_str(), "rb");
  if (!gz_) fail(path, ": cannot open for reading: ", errno ? std::strerror(errno) : "out of memory");
  gzbuffer(gz_, 1 << 18);
}

InputFile::~InputFile() {
  if (gz_) gzclose(gz_);
}

bool InputFile::fill() {
  int n = gzread(gz_, buf_.data(), static_cast<unsigned>(buf_.size()));
  if (n < 0) {
    int code = 0;
    const char* msg = gzerror(gz_, &code);
    fail(path_, ": read failed: ", code == Z_ERRNO ? std::strerror(errno) : msg,
         code == Z_ERRNO ? "" : " (corrupt or truncated gzip file?)");
  }
  pos_ = 0;
  len_ = static_cast<size_t>(n);
  return n > 0;
}

bool InputFile::read_line(std::string& line) {
  line.clear();
  bool any = false;
  while (true) {
    if (pos_ == len_ && !fill()) break;
    any = true;
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', len_ - pos_);
    if (nl) {
      size_t k = static_cast<const char*>(nl) - start;
      line.append(start, k);
      pos_ += k + 1;
      break;
    }
    line.append(start, len_ - pos_);
    pos_ = len_;
  }
  if (!any) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  ++line_;
  return true;
}

std::string InputFile::read_all() {
  std::string out(buf_.data() + pos_, len_ - pos_);
  pos_ = len_;
  while (fill()) {
    out.append(buf_.data(), len_);
    pos_ = len_;
  }
  return out;
}

}  // namespace dt
