// The documents of one input file for difftron prepare, in file order: a text
// file is one document or is split at a separator; a JSON-lines file gives one
// document per non-blank line (one string field of it). Plain and gzip files go
// through the same zlib path. raw_offset() says how far into the file on disk
// reading has got (compressed bytes for gzip), the measure prepare's progress
// and ETA use.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>

namespace dt {

struct DocFormat {
  bool jsonl = false;
  std::string separator;   // text only; empty: the whole file is one document
  std::string text_field;  // jsonl only
};

class DocReader {
 public:
  enum class Next { kDocument, kBadRecord, kEnd };

  // Fails (dt::Error naming the path) when the file cannot be opened.
  DocReader(const std::string& path, const DocFormat& format);
  ~DocReader();
  DocReader(const DocReader&) = delete;
  DocReader& operator=(const DocReader&) = delete;

  // kDocument: doc holds the next document (possibly empty).
  // kBadRecord: a JSON line without a usable text field; why is one line
  //   "path:LINE: what is wrong" and reading may go on with the next line.
  // kEnd: no more documents.
  // A read failure (I/O error, corrupt or truncated gzip) throws dt::Error;
  // the reader is unusable after that.
  Next next(std::string& doc, std::string& why);

  // Bytes of the file on disk consumed so far; the file size at kEnd.
  int64_t raw_offset() const { return raw_offset_; }

 private:
  bool fill();  // appends the next chunk of decompressed text to pending_; false at the end
  [[noreturn]] void fail_read() const;
  bool read_piece(std::string& piece);  // up to the next separator
  Next next_text(std::string& doc);
  Next next_jsonl(std::string& doc, std::string& why);

  std::string path_;
  DocFormat format_;
  gzFile gz_ = nullptr;
  std::unique_ptr<char[]> chunk_;  // one gzread's worth
  std::string pending_;  // decompressed text not handed out yet, from start_
  size_t start_ = 0;     // first byte of pending_ not handed out
  size_t scan_ = 0;      // separator search resumes here (no match begins before it)
  bool eof_ = false, done_ = false;
  int64_t line_ = 0;
  int64_t raw_offset_ = 0;
  std::string line_buf_;
  std::string read_error_;  // why the last read failed; thrown after the text read before it
};

}  // namespace dt
