// The pre-tokenizer regexes, and how they were made to agree with the reference.
//
// gpt-tokenizer 4.0.0 (src/encodingParams/constants.ts) uses, with flags `gu`:
//   cl100k_base  '(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|
//                \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+$|\s*[\r\n]|\s+(?!\S)|\s
//   r50k_base    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Translating them to PCRE2 takes three changes, none visible in the output:
//  - JS `\s` is ECMAScript's WhiteSpace + LineTerminator set; PCRE2's `\s`
//    differs (it has U+0085, lacks U+FEFF), so the set is spelled out (kSpace).
//  - JS `$` without the `m` flag is the end of the input only: PCRE2 `\z`.
//  - JS \p{L} and \p{N} follow Node's ICU (Unicode 17 in Node 20.20); PCRE2
//    10.42 has Unicode 14. Code points that Unicode 15-17 added to L and N
//    (found by classifying every code point in both) are added to the classes,
//    so pieces do not depend on the PCRE2 version installed.
// Quantifiers are made possessive where backtracking can never change the
// match (the next item cannot match what was given back); that spares PCRE2
// the backtracking but matches the same text.
#include "data/pretokenize.hpp"

#include <cstdint>
#include <cstring>

#include "core/error.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace dt {
namespace {

// ECMAScript \s: TAB VT FF SP NBSP ZWNBSP, Zs, and LF CR LS PS.
constexpr const char* kSpace =
    R"(\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF})";
// \p{L} plus letters added after Unicode 14, as of Unicode 17.
const std::string kLetter = std::string(R"(\p{L})") +
    R"(\x{088F}\x{0C5C}\x{0CDC}\x{1C89}-\x{1C8A}\x{A7CB}-\x{A7CF}\x{A7D2})"
    R"(\x{A7D4}\x{A7DA}-\x{A7DC}\x{A7F1}\x{105C0}-\x{105F3}\x{10940}-\x{10959}\x{10D4A}-\x{10D65})"
    R"(\x{10D6F}-\x{10D85}\x{10EC2}-\x{10EC7}\x{1123F}-\x{11240}\x{11380}-\x{11389}\x{1138B}\x{1138E})"
    R"(\x{11390}-\x{113B5}\x{113B7}\x{113D1}\x{113D3}\x{11BC0}-\x{11BE0}\x{11DB0}-\x{11DDB})"
    R"(\x{11F02}\x{11F04}-\x{11F10}\x{11F12}-\x{11F33}\x{1342F}\x{13441}-\x{13446}\x{13460}-\x{143FA})"
    R"(\x{16100}-\x{1611D}\x{16D40}-\x{16D6C}\x{16EA0}-\x{16EB8}\x{16EBB}-\x{16ED3}\x{16FF2}-\x{16FF3})"
    R"(\x{187F8}-\x{187FF}\x{18CFF}\x{18D09}-\x{18D1E}\x{18D80}-\x{18DF2}\x{1B132}\x{1B155})"
    R"(\x{1DF25}-\x{1DF2A}\x{1E030}-\x{1E06D}\x{1E4D0}-\x{1E4EB}\x{1E5D0}-\x{1E5ED}\x{1E5F0})"
    R"(\x{1E6C0}-\x{1E6DE}\x{1E6E0}-\x{1E6E2}\x{1E6E4}-\x{1E6E5}\x{1E6E7}-\x{1E6ED}\x{1E6F0}-\x{1E6F4})"
    R"(\x{1E6FE}-\x{1E6FF}\x{2B739}-\x{2B73F}\x{2CEA2}-\x{2CEAD}\x{2EBF0}-\x{2EE5D}\x{31350}-\x{33479})";
// \p{N} plus numbers added after Unicode 14, as of Unicode 17.
const std::string kNumber = std::string(R"(\p{N})") +
    R"(\x{10D40}-\x{10D49}\x{116D0}-\x{116E3}\x{11BF0}-\x{11BF9}\x{11DE0}-\x{11DE9}\x{11F50}-\x{11F59})"
    R"(\x{16130}-\x{16139}\x{16D70}-\x{16D79}\x{16FF4}-\x{16FF6}\x{1CCF0}-\x{1CCF9}\x{1D2C0}-\x{1D2D3})"
    R"(\x{1E4F0}-\x{1E4F9}\x{1E5F1}-\x{1E5FA})";

// {S}, {L} and {N} stand for the bodies of the space, letter and number classes.
constexpr const char* kCl100k =
    R"('(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n{L}{N}]?+[{L}]++|[{N}]{1,3}+)"
    R"(| ?+[^{S}{L}{N}]++[\r\n]*+|[{S}]++\z|[{S}]*[\r\n]|[{S}]+(?![^{S}])|[{S}])";
constexpr const char* kR50k =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?+[{L}]++| ?+[{N}]++| ?+[^{S}{L}{N}]++|[{S}]+(?![^{S}])|[{S}]++)";

const char* template_for(std::string_view encoding) {
  if (encoding == "cl100k_base") return kCl100k;
  if (encoding == "r50k_base") return kR50k;
  return nullptr;
}

std::string expand(const char* tmpl) {
  std::string out;
  for (const char* p = tmpl; *p; ++p) {
    if (p[0] == '{' && p[2] == '}' && (p[1] == 'S' || p[1] == 'L' || p[1] == 'N')) {
      out += p[1] == 'S' ? std::string(kSpace) : p[1] == 'L' ? kLetter : kNumber;
      p += 2;
    } else {
      out.push_back(*p);
    }
  }
  return out;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match state: PCRE2 match data must not be shared between threads.
// One set serves every Pretokenizer (the ovector holds one pair, whatever the
// pattern). The match limit is lifted: matching a whitespace run backtracks
// once per character (the work stays linear), and the default of 10^7 would
// reject a document with a 10 MB run. The JIT stack may grow to 64 MiB.
struct ThreadMatch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
  ThreadMatch() {
    if (!data || !context || !stack) fail("pre-tokenizer: out of memory creating PCRE2 match state");
    pcre2_jit_stack_assign(context, nullptr, stack);
    pcre2_set_match_limit(context, UINT32_MAX);
  }
  ~ThreadMatch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

}  // namespace

struct Pretokenizer::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() { pcre2_code_free(code); }
};

bool Pretokenizer::has_pattern(std::string_view encoding) { return template_for(encoding) != nullptr; }

Pretokenizer::Pretokenizer() : impl_(std::make_unique<Impl>()) {}

Pretokenizer::Pretokenizer(std::string_view encoding) : impl_(std::make_unique<Impl>()) {
  const char* tmpl = template_for(encoding);
  DT_CHECK(tmpl, "no pre-tokenizer pattern for encoding ", encoding);
  compile_pattern(expand(tmpl), 0, "pre-tokenizer pattern for " + std::string(encoding));
}

std::unique_ptr<Pretokenizer> Pretokenizer::compile(std::string_view pattern, bool literal, const std::string& what) {
  std::unique_ptr<Pretokenizer> p(new Pretokenizer());
  p->compile_pattern(std::string(pattern), literal ? PCRE2_LITERAL : 0, what);
  return p;
}

void Pretokenizer::compile_pattern(const std::string& pattern, uint32_t options, const std::string& what) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              options | PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (!impl_->code) fail(what, " does not compile at offset ", offset, ": ", pcre2_message(err));
  // Without JIT support (some platforms) the interpreter gives the same pieces, slower.
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Pretokenizer::~Pretokenizer() = default;

bool Pretokenizer::jit() const { return impl_->jit; }

bool Pretokenizer::find(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  thread_local ThreadMatch tm;
  // pcre2_jit_match skips pcre2_match's argument checks (~10% of a piece's cost).
  // The text is valid UTF-8 (callers repair it first), so PCRE2 need not check it.
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), from, 0, tm.data, tm.context)
                            : pcre2_match(impl_->code, subject, text.size(), from, PCRE2_NO_UTF_CHECK, tm.data,
                                          tm.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("pre-tokenizer: PCRE2 match failed at byte ", from, ": ", pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tm.data);
  begin = ov[0];
  end = ov[1];
  return true;
}

bool Pretokenizer::next(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  if (!find(text, from, begin, end)) return false;
  DT_CHECK(end > begin, "empty pre-token at byte ", begin);
  return true;
}

// ---- UTF-8 ------------------------------------------------------------------

namespace {

// Length of the well-formed sequence at s[i], or 0 plus the length of the
// maximal subpart to replace (WHATWG: lead byte, then continuation bytes while
// they stay in range; E0/ED/F0/F4 narrow the range of the first continuation).
size_t utf8_sequence(std::string_view s, size_t i, size_t& bad) {
  const auto b = static_cast<unsigned char>(s[i]);
  bad = 0;
  if (b < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    bad = 1;  // 80..C1, F5..FF: never a lead byte
    return 0;
  }
  size_t j = i + 1;
  for (size_t k = 0; k < need; ++k, ++j) {
    if (j >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[j]);
    if (c < lo || c > hi) break;
    lo = 0x80;
    hi = 0xBF;
  }
  if (j - i == need + 1) return need + 1;
  bad = j - i;
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // ASCII runs, eight bytes at a time.
    uint64_t w;
    while (i + 8 <= text.size() && (std::memcpy(&w, text.data() + i, 8), (w & 0x8080808080808080ull) == 0)) i += 8;
    if (i >= text.size()) break;
    size_t bad;
    const size_t n = utf8_sequence(text, i, bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    size_t bad;
    const size_t n = utf8_sequence(text, i, bad);
    if (n > 0) {
      out.append(text.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += bad;
    }
  }
  return out;
}

}  // namespace dt
