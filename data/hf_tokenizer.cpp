#include "data/hf_tokenizer.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include <algorithm>

#include "core/error.hpp"

namespace dt {
namespace {

// Byte length of the White_Space character (Rust's char::is_whitespace, which
// `tokenizers` uses for lstrip/rstrip) starting at text[i], or 0.
size_t whitespace_at(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u; };
  if ((b(0) >= 0x09 && b(0) <= 0x0D) || b(0) == 0x20) return 1;
  if (b(0) == 0xC2 && (b(1) == 0x85 || b(1) == 0xA0)) return 2;  // U+0085, U+00A0
  if (b(0) == 0xE1 && b(1) == 0x9A && b(2) == 0x80) return 3;    // U+1680
  if (b(0) == 0xE2 && b(1) == 0x80 && ((b(2) >= 0x80 && b(2) <= 0x8A) || b(2) == 0xA8 || b(2) == 0xA9 || b(2) == 0xAF))
    return 3;                                                  // U+2000..200A, 2028, 2029, 202F
  if (b(0) == 0xE2 && b(1) == 0x81 && b(2) == 0x9F) return 3;  // U+205F
  if (b(0) == 0xE3 && b(1) == 0x80 && b(2) == 0x80) return 3;  // U+3000
  return 0;
}

// NFC of valid UTF-8 `text`, in `buffer` if it changes.
std::string_view nfc(std::string_view text, std::string& buffer) {
  bool ascii = true;
  for (const char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii) return text;  // ASCII is NFC
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(err);
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (U_SUCCESS(err) && n->isNormalizedUTF8(piece, err) && U_SUCCESS(err)) return text;
  buffer.clear();
  icu::StringByteSink<std::string> sink(&buffer, static_cast<int32_t>(text.size()));
  err = U_ZERO_ERROR;
  n->normalizeUTF8(0, piece, sink, nullptr, err);
  if (U_FAILURE(err)) fail("tokenizer: NFC normalization failed: ", u_errorName(err));
  return buffer;
}

}  // namespace

// Finds added tokens leftmost-longest, as the `tokenizers` Aho-Corasick
// matcher does: tokens are grouped by first byte, longest first.
struct HfTokenizer::Matcher {
  std::vector<const HfAddedToken*> by_byte[256];

  explicit Matcher(const std::vector<const HfAddedToken*>& tokens) {
    for (const HfAddedToken* t : tokens) by_byte[static_cast<unsigned char>(t->content[0])].push_back(t);
    for (auto& v : by_byte)
      std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->content.size() > b->content.size(); });
  }

  // Calls on_token(id) for each added token found and on_gap(text) for the
  // non-empty text between them, in order. lstrip / rstrip tokens take the
  // whitespace beside them (within the gap) with them.
  template <typename T, typename G>
  void split(std::string_view text, T&& on_token, G&& on_gap) const {
    size_t prev = 0;
    for (size_t pos = 0; pos < text.size(); ++pos) {
      const auto& candidates = by_byte[static_cast<unsigned char>(text[pos])];
      const HfAddedToken* hit = nullptr;
      for (const HfAddedToken* t : candidates)
        if (text.compare(pos, t->content.size(), t->content) == 0) {
          hit = t;
          break;
        }
      if (!hit) continue;
      size_t begin = pos, end = pos + hit->content.size();
      if (hit->lstrip)
        for (bool more = true; more;) {
          more = false;
          for (size_t k = 1; k <= 3 && k <= begin - prev; ++k)
            if (whitespace_at(text, begin - k) == k) {
              begin -= k;
              more = true;
              break;
            }
        }
      if (hit->rstrip)
        while (const size_t k = whitespace_at(text, end)) end += k;
      if (begin > prev) on_gap(text.substr(prev, begin - prev));
      on_token(hit->id);
      prev = end;
      pos = end - 1;
    }
    if (prev < text.size()) on_gap(text.substr(prev));
  }
};

HfTokenizer::HfTokenizer(const std::string& path)
    : path_(path), name_(tokenizer_name(path)), model_(read_hf_tokenizer_json(path)) {
  // `tokenizers` first cuts out the tokens with normalized: false, then
  // normalizes what is left and cuts out those with normalized: true.
  for (int special = 0; special < 2; ++special)
    for (int normalized = 0; normalized < 2; ++normalized) {
      std::vector<const HfAddedToken*> tokens;
      for (const auto& t : model_.added)
        if (t.normalized == bool(normalized) && (special || !t.special)) tokens.push_back(&t);
      matchers_[special][normalized] = std::make_unique<Matcher>(tokens);
    }
}

HfTokenizer::~HfTokenizer() = default;

// The pre-tokenizer chain: Split steps in order, then ByteLevel (prefix space,
// optional GPT-2 pattern); f(piece) gets each final pre-token.
template <typename F>
void HfTokenizer::pretokenize(size_t stage, std::string_view text, F& f) const {
  if (stage < model_.splits.size()) {
    model_.splits[stage]->split_isolated(text, [&](std::string_view p) { pretokenize(stage + 1, p, f); });
    return;
  }
  std::string prefixed;
  if (model_.add_prefix_space && text[0] != ' ') {  // text is never empty here
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  if (model_.byte_level_regex) {
    model_.byte_level_regex->split_isolated(text, f);
  } else {
    f(text);
  }
}

void HfTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (model_.ignore_merges)
    if (const int32_t id = model_.vocab.find(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  cache_.encode(piece, out, [this](std::string_view p, std::vector<int32_t>& o) {
    bpe_merge_pairs(model_.vocab, model_.merges, p, o);
  });
}

void HfTokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  auto piece = [&](std::string_view p) { encode_piece(p, out); };
  pretokenize(0, text, piece);
}

std::vector<int32_t> HfTokenizer::encode_impl(std::string_view text, bool special) const {
  std::string repaired;
  if (!is_valid_utf8(text)) text = repaired = replace_invalid_utf8(text);
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 16);
  matchers_[special][0]->split(
      text, [&](int32_t id) { out.push_back(id); },
      [&](std::string_view gap) { encode_between_raw_tokens(gap, special, out); });
  return out;
}

// Text between tokens with normalized: false: normalize, then cut out the
// tokens with normalized: true, as `tokenizers` does.
void HfTokenizer::encode_between_raw_tokens(std::string_view text, bool special, std::vector<int32_t>& out) const {
  std::string buffer;
  if (model_.nfc) text = nfc(text, buffer);
  matchers_[special][1]->split(
      text, [&](int32_t id) { out.push_back(id); }, [&](std::string_view g) { encode_segment(g, out); });
}

std::string HfTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (const int32_t id : ids) {
    if (id == model_.eos_id) continue;
    if (const auto it = model_.other_bytes.find(id); it != model_.other_bytes.end()) {
      out += it->second;
    } else if (model_.vocab.has(id)) {
      out += model_.vocab.token(id);
    } else if (id < 0 || id >= model_.vocab_size) {
      fail(name_, ": cannot decode token id ", id, " (expected 0..", model_.vocab_size - 1, ")");
    } else {
      fail(name_, ": cannot decode token id ", id, " (no token has this id)");
    }
  }
  return out;
}

std::unique_ptr<Tokenizer> make_hf_tokenizer(const std::string& path) { return std::make_unique<HfTokenizer>(path); }

}  // namespace dt
