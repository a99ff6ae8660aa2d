// Pre-tokenization: a regex splits text into pieces (words, numbers,
// punctuation runs, whitespace) and BPE runs on each piece separately. The
// tiktoken encodings have built-in patterns; a tokenizer.json brings its own
// (Pretokenizer::compile, data/hf_tokenizer.hpp). The built-in ones are
// those of the reference encoder, gpt-tokenizer 4.0.0 (JavaScript, `u` flag),
// translated to PCRE2 so that every piece boundary agrees with it;
// pretokenize.cpp says how.
//
// Input must be valid UTF-8. Invalid input is first repaired with
// replace_invalid_utf8, the rule the reference applies on its way in (its
// encoder takes a JS string, made from bytes by TextDecoder).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dt {

// True if `text` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// The WHATWG UTF-8 decoder's repair, as TextDecoder does it: each maximal
// subpart of an ill-formed sequence (e.g. "\xE2\x82" cut short, or a lone
// "\x80") becomes one U+FFFD; valid sequences are copied unchanged.
std::string replace_invalid_utf8(std::string_view text);

class Pretokenizer {
 public:
  // encoding: "cl100k_base" or "r50k_base" (see has_pattern).
  explicit Pretokenizer(std::string_view encoding);
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  static bool has_pattern(std::string_view encoding);
  // A pattern given by a file (a tokenizer.json Split), compiled as it is with
  // PCRE2 (UTF, UCP), or as literal text if `literal`; a pattern that does not
  // compile fails with one line naming `what`.
  static std::unique_ptr<Pretokenizer> compile(std::string_view pattern, bool literal, const std::string& what);

  // Calls f(piece) for every piece of `text` (valid UTF-8), in order; the
  // pieces tile `text`. Thread-safe: match state is per thread.
  template <typename F>
  void split(std::string_view text, F&& f) const {
    size_t begin = 0, end = 0;
    for (size_t from = 0; from < text.size() && next(text, from, begin, end); from = end)
      f(text.substr(begin, end - begin));
  }

  // Calls f(piece) for every match of the pattern and every non-empty gap
  // between matches, in order (empty matches only cut the text): what
  // `tokenizers` does for a Split with behavior Isolated. Any pattern.
  template <typename F>
  void split_isolated(std::string_view text, F&& f) const {
    size_t prev = 0, from = 0, begin = 0, end = 0;
    while (from <= text.size() && find(text, from, begin, end)) {
      if (begin > prev) f(text.substr(prev, begin - prev));
      if (end > begin) f(text.substr(begin, end - begin));
      prev = end;
      if (end > begin) {
        from = end;
      } else {  // an empty match: search again one character on
        if (begin == text.size()) break;
        from = begin + 1;
        while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
      }
    }
    if (prev < text.size()) f(text.substr(prev));
  }

  // The first piece at or after byte `from`: [begin, end). False if none.
  bool next(std::string_view text, size_t from, size_t& begin, size_t& end) const;
  // The first match at or after byte `from`, possibly empty. False if none.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& end) const;
  bool jit() const;  // true if PCRE2 compiled the pattern to machine code

 private:
  Pretokenizer();
  void compile_pattern(const std::string& pattern, uint32_t options, const std::string& what);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dt
