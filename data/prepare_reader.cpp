#include "data/prepare_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "data/jsonl_field.hpp"

namespace dt {
namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

}  // namespace

DocReader::DocReader(const std::string& path, const DocFormat& format)
    : path_(path), format_(format), chunk_(new char[kChunkBytes]) {  // uninitialized: gzread fills it
  if (format_.jsonl) format_.separator.assign(1, '\n');  // one line per record
  errno = 0;
  gz_ = gzopen(path.c_str(), "rb");
  if (!gz_) fail(path, ": cannot open for reading: ", errno ? std::strerror(errno) : "out of memory");
  gzbuffer(gz_, 1 << 18);
}

DocReader::~DocReader() {
  if (gz_) gzclose(gz_);
}

void DocReader::fail_read() const {
  if (format_.jsonl) fail(path_, ":", line_ + 1, ": read failed: ", read_error_);
  fail(path_, ": read failed: ", read_error_);
}

bool DocReader::fill() {
  if (!read_error_.empty()) fail_read();
  if (eof_) return false;
  errno = 0;
  const int n = gzread(gz_, chunk_.get(), static_cast<unsigned>(kChunkBytes));
  int code = Z_OK;
  const char* msg = gzerror(gz_, &code);
  // A truncated gzip stream comes back as a short read with Z_BUF_ERROR set,
  // not as -1. Text read before the damage is handed out first.
  if (n < 0 || code != Z_OK) {
    read_error_ = code == Z_ERRNO ? std::strerror(errno) : msg;
    if (read_error_.starts_with(path_ + ": ")) read_error_.erase(0, path_.size() + 2);  // zlib names the file too
    if (code != Z_ERRNO) read_error_.append(" (corrupt or truncated gzip file?)");
    if (n <= 0) fail_read();
  }
  raw_offset_ = gzoffset(gz_);
  if (n == 0) {
    eof_ = true;
    return false;
  }
  // Drop what was handed out already, so pending_ holds one unfinished piece.
  if (start_ > 0) {
    pending_.erase(0, start_);
    scan_ -= start_;
    start_ = 0;
  }
  pending_.append(chunk_.get(), static_cast<size_t>(n));
  return true;
}

// The text up to the next separator (not included), or the rest of the file;
// false when nothing is left.
bool DocReader::read_piece(std::string& piece) {
  const std::string& sep = format_.separator;
  while (true) {
    const size_t at = pending_.find(sep, scan_);
    if (at != std::string::npos) {
      piece.assign(pending_, start_, at - start_);
      start_ = scan_ = at + sep.size();
      return true;
    }
    // A separator that straddles the next chunk starts in the last sep-1 bytes.
    const size_t tail = sep.size() - 1;
    scan_ = std::max(start_, pending_.size() > tail ? pending_.size() - tail : 0);
    if (!fill()) break;
  }
  if (start_ == pending_.size()) return false;
  piece.assign(pending_, start_);
  start_ = scan_ = pending_.size();
  return true;
}

DocReader::Next DocReader::next_text(std::string& doc) {
  if (!format_.separator.empty()) return read_piece(doc) ? Next::kDocument : Next::kEnd;
  if (done_) return Next::kEnd;
  while (fill()) {
  }
  done_ = true;
  doc = std::move(pending_);
  pending_.clear();
  start_ = scan_ = 0;
  return Next::kDocument;
}

DocReader::Next DocReader::next_jsonl(std::string& doc, std::string& why) {
  std::string& line = line_buf_;
  while (read_piece(line)) {
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    std::string err;
    if (jsonl_string_field(line, format_.text_field, doc, err)) return Next::kDocument;
    why = path_ + ":" + std::to_string(line_) + ": " + err;
    return Next::kBadRecord;
  }
  return Next::kEnd;
}

DocReader::Next DocReader::next(std::string& doc, std::string& why) {
  return format_.jsonl ? next_jsonl(doc, why) : next_text(doc);
}

}  // namespace dt
