// Hugging Face `tokenizers` files (tokenizer.json) of byte-level BPE models --
// GPT-2, Llama 3, Qwen 2, Mistral-Nemo style -- as a difftron Tokenizer.
//
// Supported, following the `tokenizers` documentation and source semantics:
//   model        BPE with vocab (token -> id) and merges ("a b" or ["a", "b"];
//                rank = position), ignore_merges (a pre-token that is itself in
//                the vocab is one token, as Llama 3 sets). Encoding merges the
//                adjacent pair with the lowest merge rank, leftmost first, until
//                none is listed (data/tiktoken_bpe.hpp, bpe_merge_pairs).
//   pre_tokenizer  ByteLevel (add_prefix_space; use_regex: the GPT-2 pattern),
//                or a Sequence of Split steps (Regex or String pattern,
//                behavior Isolated, invert false) ending in ByteLevel, as Llama
//                3, Qwen 2 and Mistral-Nemo have. Patterns run in PCRE2 (UTF,
//                UCP) where `tokenizers` uses Oniguruma: \s, \p{L}, \p{N} follow
//                PCRE2's Unicode tables, which may differ on rare code points
//                (e.g. letters added after PCRE2's Unicode version).
//   added_tokens Non-special ones are cut out of the text before
//                pre-tokenization (leftmost-longest; lstrip/rstrip honoured);
//                special ones only by encode_with_special (`--allow-special`),
//                else their text is ordinary text, as for tiktoken.
//   decoder      ByteLevel: ids -> bytes; EOS decodes to nothing.
//   normalizer   none, or NFC (Qwen 2; by ICU) applied to the text between
//                added tokens, so decode(encode(x)) is NFC(x).
//   post_processor  not applied: encode gives the ids of the text alone (no
//                BOS), like the tiktoken tokenizer.
// Anything else (Unigram / WordPiece / WordLevel models, Metaspace
// (SentencePiece-style) pre-tokenizers, byte_fallback BPE, other normalizers,
// Split behaviors other than Isolated, single_word added tokens) fails at load
// with one line naming the file.
//
// EOS: the eos_token of a tokenizer_config.json beside the file if there is
// one, else the first special added token among <|endoftext|>,
// <|end_of_text|>, </s>. vocab_size: the largest id (vocab or added) + 1.
// Invalid UTF-8 input is repaired first (replace_invalid_utf8), as for tiktoken.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/bpe_cache.hpp"
#include "data/pretokenize.hpp"
#include "data/tiktoken_bpe.hpp"
#include "data/tiktoken_ranks.hpp"
#include "data/tokenizer.hpp"

namespace dt {

// GPT-2's byte-level alphabet (bytes_to_unicode): printable bytes (! to ~,
// ¡ to ¬, ® to ÿ) stand for themselves, the other 68 bytes for U+0100.. in
// byte order. byte_level_text: bytes -> that text (UTF-8); byte_level_bytes:
// back, false if a character is outside the alphabet.
std::string byte_level_text(std::string_view bytes);
bool byte_level_bytes(std::string_view text, std::string& bytes);

struct HfAddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, normalized = true;
};

// Everything encode and decode need from a tokenizer.json (hf_tokenizer_json.cpp).
struct HfTokenizerModel {
  RankTable vocab;  // token bytes -> id, for vocab tokens written in the byte-level alphabet
  MergeTable merges;
  std::unordered_map<int32_t, std::string> other_bytes;  // id -> bytes for added tokens and the rest of the vocab
  std::vector<HfAddedToken> added;
  std::vector<std::unique_ptr<Pretokenizer>> splits;  // Split steps before ByteLevel, in order
  bool add_prefix_space = false;
  std::unique_ptr<Pretokenizer> byte_level_regex;  // ByteLevel use_regex: the GPT-2 pattern; else null
  bool ignore_merges = false;
  bool nfc = false;  // normalizer NFC
  int32_t eos_id = -1;
  int64_t vocab_size = 0;
};

// Reads and checks `path`; every problem is a one-line dt::Error naming it.
HfTokenizerModel read_hf_tokenizer_json(const std::string& path);

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(const std::string& path);
  ~HfTokenizer() override;

  std::vector<int32_t> encode(std::string_view text) const override { return encode_impl(text, false); }
  std::vector<int32_t> encode_with_special(std::string_view text) const override { return encode_impl(text, true); }
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return model_.vocab_size; }
  int32_t eos_id() const override { return model_.eos_id; }
  std::string name() const override { return name_; }

 private:
  struct Matcher;  // finds added tokens in text
  std::vector<int32_t> encode_impl(std::string_view text, bool special) const;
  template <typename F>
  void pretokenize(size_t stage, std::string_view text, F& f) const;
  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  void encode_between_raw_tokens(std::string_view text, bool special, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::string path_, name_;
  HfTokenizerModel model_;
  // [special allowed][normalized]: the added tokens each pass looks for.
  std::unique_ptr<Matcher> matchers_[2][2];
  BpeCache cache_;
};

// make_tokenizer's path for .json files (data/tokenizer.cpp).
std::unique_ptr<Tokenizer> make_hf_tokenizer(const std::string& path);

}  // namespace dt
