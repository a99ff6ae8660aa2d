// Tokenizers turn text into token ids and back. Every shard records the
// tokenizer's name, vocabulary size and EOS id, so the loader can refuse to mix
// shards made by different tokenizers.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text to ids, no EOS appended (the shard writer adds EOS after each document).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // As encode, but special-token text ("<|endoftext|>") becomes its special id
  // (`tokenize --allow-special`); a tokenizer without special tokens encodes.
  virtual std::vector<int32_t> encode_with_special(std::string_view text) const { return encode(text); }
  // Ids to text; EOS decodes to nothing, an id outside [0, vocab_size) is an error.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t eos_id() const = 0;
  // What shards record: tokenizer_name() of the spec it was made from.
  virtual std::string name() const = 0;
};

// spec: "byte" (ids 0..255 are raw bytes, EOS = 256, vocab_size 257), a
// Hugging Face `tokenizers` file ending in .json for a byte-level BPE model
// (data/hf_tokenizer.hpp), or a tiktoken rank file whose stem names the
// encoding (cl100k_base, r50k_base; data/tiktoken.hpp). Anything else fails
// with a one-line dt::Error.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec);
// The name a tokenizer built from `spec` reports (and shards record), without
// loading it: "byte"; for a .json file its parent directory's name and its
// file name ("/models/Meta-Llama-3-8B/tokenizer.json" -> "Meta-Llama-3-8B/tokenizer.json",
// the same on every machine that keeps the model directory's name); for a rank
// file its stem ("data/cl100k_base.tiktoken" -> "cl100k_base").
std::string tokenizer_name(const std::string& spec);

std::unique_ptr<Tokenizer> make_byte_tokenizer();  // data/byte_tokenizer.cpp

}  // namespace dt
