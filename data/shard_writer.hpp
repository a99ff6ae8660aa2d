// Writes one token shard (DESIGN §5). Tokens stream into a chunked /tokens
// dataset under "<path>.tmp"; close() writes /doc_offsets and the attributes,
// fsyncs, and renames to <path>, so a crash never leaves a partial shard under
// the final name. A writer destroyed without close() removes its .tmp file.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/hdf5_util.hpp"

namespace dt {

class ShardWriter {
 public:
  ShardWriter(const std::string& path, const std::string& tokenizer, int64_t vocab_size,
              int32_t eos_id);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one document's tokens followed by EOS. Ids must be in [0, vocab_size).
  void add_document(std::span<const int32_t> tokens);
  // Finishes the file and moves it to its final name. Call exactly once.
  void close();

  int64_t num_tokens() const { return num_tokens_; }
  int64_t num_docs() const { return static_cast<int64_t>(doc_offsets_.size()) - 1; }
  const std::string& path() const { return path_; }
  std::string tmp_path() const { return path_ + ".tmp"; }

 private:
  void append(std::span<const int32_t> tokens);
  void flush_buffer();

  std::string path_, tokenizer_;
  int64_t vocab_size_;
  int32_t eos_id_;
  bool u16_;
  H5Handle file_, tokens_;
  std::vector<uint32_t> buffer_;        // tokens not yet written to /tokens
  int64_t written_ = 0;                 // tokens already in /tokens
  int64_t num_tokens_ = 0;              // written_ + buffer_.size()
  std::vector<uint64_t> doc_offsets_;   // start of each document, then num_tokens
  bool closed_ = false;
};

}  // namespace dt
