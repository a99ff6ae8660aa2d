// A byte-level BPE tokenizer that reads tiktoken rank files and encodes as the
// reference does (gpt-tokenizer 4.0.0, a JavaScript port of tiktoken): same
// pre-tokenizer regex, same merge order, same ids.
//
// Encodings, chosen by the rank file's stem:
//   cl100k_base  ranks 0..100255; <|endoftext|> 100257 (EOS), <|fim_prefix|>
//                100258, <|fim_middle|> 100259, <|fim_suffix|> 100260,
//                <|endofprompt|> 100276; vocab_size 100277
//   r50k_base    ranks 0..50255; <|endoftext|> 50256 (EOS); vocab_size 50257
//
// Input bytes that are not valid UTF-8 are repaired first (replace_invalid_utf8:
// one U+FFFD per maximal ill-formed subpart, as TextDecoder does), so the ids
// equal the reference's for the same bytes; such input does not round-trip.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/bpe_cache.hpp"
#include "data/pretokenize.hpp"
#include "data/tiktoken_ranks.hpp"
#include "data/tokenizer.hpp"

namespace dt {

class TiktokenTokenizer final : public Tokenizer {
 public:
  // path: a .tiktoken file whose stem names a supported encoding. Errors are
  // one-line dt::Errors naming the file (and the line, for a malformed one).
  explicit TiktokenTokenizer(const std::string& path);
  ~TiktokenTokenizer() override;

  // Special-token text in `text` ("<|endoftext|>") is encoded as ordinary text:
  // training documents that quote it must not inject an EOS.
  std::vector<int32_t> encode(std::string_view text) const override;
  // As encode, but each occurrence of a special token's text becomes its id
  // (leftmost first), as tiktoken's encode(allowed_special="all") does.
  std::vector<int32_t> encode_with_special(std::string_view text) const override;
  // Ids to bytes; special ids give their text, except EOS, which gives nothing.
  // An id outside [0, vocab_size) or one no token has is an error.
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string name() const override { return encoding_; }

  const std::vector<std::pair<std::string, int32_t>>& special_tokens() const { return specials_; }
  const Pretokenizer& pretokenizer() const { return *pretok_; }

  static std::vector<std::string> supported_encodings();  // {"cl100k_base", "r50k_base"}

 private:
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;  // valid UTF-8
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::string encoding_;
  RankTable ranks_;
  std::unique_ptr<Pretokenizer> pretok_;
  std::vector<std::pair<std::string, int32_t>> specials_;
  int32_t eos_id_ = -1;
  int64_t vocab_size_ = 0;
  BpeCache cache_;  // pieces that needed merging
};

// make_tokenizer's path for rank files (data/tokenizer.cpp).
std::unique_ptr<Tokenizer> make_tiktoken_tokenizer(const std::string& path);

}  // namespace dt
