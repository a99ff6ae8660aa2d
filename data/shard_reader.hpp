// Opens and validates one token shard (DESIGN §5) and reads token ranges.
// Every problem (not an HDF5 file, missing dataset, wrong attribute, sizes that
// disagree) is a one-line dt::Error naming the shard path and what is wrong.
// Not thread-safe: HDF5 calls must come from one thread at a time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/hdf5_util.hpp"

namespace dt {

struct ShardMeta {
  std::string path;
  std::string tokenizer;
  int64_t vocab_size = 0;
  int32_t eos_id = 0;
  int64_t num_tokens = 0;
  int64_t num_docs = 0;
};

class ShardReader {
 public:
  explicit ShardReader(const std::string& path);

  const ShardMeta& meta() const { return meta_; }
  int64_t num_tokens() const { return meta_.num_tokens; }
  // Tokens [begin, end) into out (end - begin int32 values); 0 <= begin <= end <= num_tokens.
  // One hyperslab read of just those tokens (no chunk cache, no HDF5 type conversion).
  void read_tokens(int64_t begin, int64_t end, int32_t* out) const;
  // num_docs + 1 offsets: start of each document in /tokens, then num_tokens.
  const std::vector<uint64_t>& doc_offsets() const { return doc_offsets_; }

 private:
  [[noreturn]] void bad(const std::string& what) const;

  ShardMeta meta_;
  H5Handle file_, tokens_;
  std::vector<uint64_t> doc_offsets_;
};

}  // namespace dt
