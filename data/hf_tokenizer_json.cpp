// Reading a tokenizer.json (the `tokenizers` serialization) into an
// HfTokenizerModel, with a one-line error for every unsupported or malformed part.
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/hf_tokenizer.hpp"

namespace dt {
namespace {

using J = nlohmann::json;  // unordered: a vocab object has 10^5 keys

// GPT-2's ByteLevel pre-tokenizer pattern (use_regex: true), as `tokenizers` defines it.
constexpr const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// byte -> code point of its character in the byte-level alphabet.
const std::array<uint32_t, 256>& byte_chars() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : extra++;
    }
    return t;
  }();
  return table;
}

// code point (< 324) -> byte, or -1.
const std::array<int, 324>& char_bytes() {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_chars()[b]] = b;
    return t;
  }();
  return table;
}

void append_utf8(uint32_t cp, std::string& out) {  // cp < 0x800 here
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else {
    out.push_back(static_cast<char>(0xC0 | cp >> 6));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

struct Reader {
  std::string path;

  template <typename... Args>
  [[noreturn]] void bad(const Args&... args) const {
    fail(path, ": ", args...);
  }
  const J* member(const J& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  bool flag(const J& obj, const char* key, bool absent, const std::string& where) const {
    const J* v = member(obj, key);
    if (!v) return absent;
    if (!v->is_boolean()) bad(where, ".", key, " is ", v->type_name(), ", expected true or false");
    return v->get<bool>();
  }
  std::string text(const J& obj, const char* key, const std::string& where) const {
    const J* v = member(obj, key);
    if (!v || !v->is_string()) bad(where, ".", key, " is ", v ? v->type_name() : "missing", ", expected a string");
    return v->get<std::string>();
  }
  int32_t id(const J& v, const std::string& where) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (1 << 26))
      bad(where, " is ", v.dump(), ", expected a token id in [0, 2^26)");
    return v.get<int32_t>();
  }
  std::string type_of(const J& obj, const std::string& where) const {
    if (!obj.is_object()) bad(where, " is ", obj.type_name(), ", expected an object");
    return text(obj, "type", where);
  }
};

void read_pre_tokenizer(const Reader& r, const J* pt, HfTokenizerModel& m) {
  if (!pt) r.bad("pre_tokenizer is missing (byte-level BPE needs ByteLevel; only byte-level BPE is supported)");
  std::vector<const J*> steps;
  const std::string type = r.type_of(*pt, "pre_tokenizer");
  if (type == "Sequence") {
    const J* list = r.member(*pt, "pretokenizers");
    if (!list || !list->is_array() || list->empty()) r.bad("pre_tokenizer.pretokenizers is not a non-empty array");
    for (const J& s : *list) steps.push_back(&s);
  } else {
    steps.push_back(pt);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string where = type == "Sequence" ? "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]"
                                                 : std::string("pre_tokenizer");
    const std::string t = r.type_of(*steps[i], where);
    const bool last = i + 1 == steps.size();
    if (t == "Metaspace")
      r.bad(where, " 'Metaspace' (SentencePiece-style) is not supported (byte-level BPE only)");
    if (t == "ByteLevel" && last) {
      m.add_prefix_space = r.flag(*steps[i], "add_prefix_space", true, where);
      if (r.flag(*steps[i], "use_regex", true, where))
        m.byte_level_regex = Pretokenizer::compile(kByteLevelPattern, false, "the ByteLevel pattern");
    } else if (t == "Split" && !last) {
      const J* pat = r.member(*steps[i], "pattern");
      const bool is_regex = pat && pat->is_object() && pat->contains("Regex") && (*pat)["Regex"].is_string();
      const bool is_string = pat && pat->is_object() && pat->contains("String") && (*pat)["String"].is_string();
      if (!is_regex && !is_string) r.bad(where, ".pattern is not {\"Regex\": ...} or {\"String\": ...}");
      const std::string behavior = r.text(*steps[i], "behavior", where);
      if (behavior != "Isolated") r.bad(where, ".behavior '", behavior, "' is not supported (only Isolated)");
      if (r.flag(*steps[i], "invert", false, where)) r.bad(where, ".invert true is not supported");
      const std::string p = (*pat)[is_regex ? "Regex" : "String"].get<std::string>();
      m.splits.push_back(Pretokenizer::compile(p, is_string, r.path + ": " + where + ".pattern"));
    } else if (t == "ByteLevel" || t == "Split") {
      r.bad("pre_tokenizer: ", where, " is ", t, "; supported are ByteLevel alone or a Sequence of Split steps ",
            "ending in ByteLevel");
    } else {
      r.bad(where, " '", t, "' is not supported (ByteLevel, or a Sequence of Split steps ending in ByteLevel)");
    }
  }
}

// The model's kind and options; first, so an unsupported file fails before its vocab is read.
const J& check_model(const Reader& r, const J& root) {
  const J* model = r.member(root, "model");
  if (!model || !model->is_object()) r.bad("model is missing or not an object");
  const J* type = r.member(*model, "type");
  const std::string t = type && type->is_string() ? type->get<std::string>() : model->contains("merges") ? "BPE" : "?";
  if (t != "BPE") r.bad("tokenizer.json model '", t, "' is not supported (byte-level BPE only)");
  if (r.flag(*model, "byte_fallback", false, "model"))
    r.bad("model BPE with byte_fallback (SentencePiece-style) is not supported (byte-level BPE only)");
  if (const J* d = r.member(*model, "dropout"); d && !(d->is_number() && d->get<double>() == 0.0))
    r.bad("model.dropout ", d->dump(), " is not supported (expected null: encoding must be deterministic)");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const J* a = r.member(*model, affix); a && !(a->is_string() && a->get<std::string>().empty()))
      r.bad("model.", affix, " ", a->dump(), " is not supported (byte-level BPE has none)");
  return *model;
}

void read_model(const Reader& r, const J& model_json, HfTokenizerModel& m) {
  const J* model = &model_json;
  m.ignore_merges = r.flag(*model, "ignore_merges", false, "model");

  // vocab: text -> id. Byte-level text goes to the byte table; the rest is
  // only decodable (byte-level BPE cannot produce it).
  const J* vocab = r.member(*model, "vocab");
  if (!vocab || !vocab->is_object() || vocab->empty()) r.bad("model.vocab is missing or not a non-empty object");
  std::vector<std::pair<std::string, int32_t>> pairs;
  std::unordered_map<std::string, int32_t> other_ids;  // text outside the alphabet -> id
  pairs.reserve(vocab->size());
  std::string bytes;
  for (const auto& [token, v] : vocab->items()) {
    const int32_t id = r.id(v, "model.vocab[\"" + token + "\"]");
    m.vocab_size = std::max<int64_t>(m.vocab_size, id + 1);
    if (byte_level_bytes(token, bytes) && !bytes.empty()) {
      pairs.emplace_back(bytes, id);
    } else {
      other_ids[token] = id;
      m.other_bytes[id] = token;
    }
  }
  m.vocab = RankTable::from_pairs(pairs, r.path + ": model.vocab");
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (m.vocab.find(std::string_view(&c, 1)) < 0)
      r.bad("model.vocab has no token for byte 0x", std::hex, b, std::dec, " ('", byte_level_text({&c, 1}),
            "'); a byte-level BPE vocab has all 256");
  }

  const J* merges = r.member(*model, "merges");
  if (!merges || !merges->is_array()) r.bad("model.merges is missing or not an array");
  auto token_id = [&](const std::string& text, std::string& b, const std::string& where) -> int32_t {
    if (byte_level_bytes(text, b) && !b.empty())
      if (const int32_t id = m.vocab.find(b); id >= 0) return id;
    if (const auto it = other_ids.find(text); it != other_ids.end()) return -1;  // never formed from bytes
    r.bad(where, ": token '", text, "' is not in model.vocab");
  };
  std::string left_bytes, right_bytes;
  for (size_t i = 0; i < merges->size(); ++i) {
    const J& e = (*merges)[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        r.bad(where, " '", s, "' is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      r.bad(where, " is ", e.dump(), ", expected \"A B\" or [\"A\", \"B\"]");
    }
    const int32_t left = token_id(a, left_bytes, where), right = token_id(b, right_bytes, where);
    const int32_t merged = token_id(a + b, bytes, where);
    if (left < 0 || right < 0 || merged < 0) continue;  // text outside the alphabet: never applies
    m.merges.add(left, right, static_cast<int32_t>(i), merged);
  }
}

void read_added_tokens(const Reader& r, const J& root, HfTokenizerModel& m) {
  const J* added = r.member(root, "added_tokens");
  if (!added) return;
  if (!added->is_array()) r.bad("added_tokens is ", added->type_name(), ", expected an array");
  for (size_t i = 0; i < added->size(); ++i) {
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const J& a = (*added)[i];
    if (!a.is_object()) r.bad(where, " is ", a.type_name(), ", expected an object");
    HfAddedToken t;
    t.content = r.text(a, "content", where);
    if (t.content.empty()) r.bad(where, ".content is empty");
    const J* id = r.member(a, "id");
    if (!id) r.bad(where, ".id is missing");
    t.id = r.id(*id, where + ".id");
    t.special = r.flag(a, "special", false, where);
    t.lstrip = r.flag(a, "lstrip", false, where);
    t.rstrip = r.flag(a, "rstrip", false, where);
    t.normalized = r.flag(a, "normalized", !t.special, where);
    if (r.flag(a, "single_word", false, where))
      r.bad(where, " ('", t.content, "') has single_word true, which is not supported");
    // Decoded as `tokenizers` does: through the byte-level alphabet if it can be.
    std::string bytes;
    m.other_bytes[t.id] = byte_level_bytes(t.content, bytes) ? bytes : t.content;
    m.vocab_size = std::max<int64_t>(m.vocab_size, t.id + 1);
    m.added.push_back(std::move(t));
  }
}

// The id of `content`: an added token, or a vocab token.
int32_t id_of(const HfTokenizerModel& m, const std::string& content) {
  for (const auto& t : m.added)
    if (t.content == content) return t.id;
  std::string bytes;
  if (byte_level_bytes(content, bytes) && !bytes.empty())
    if (const int32_t id = m.vocab.find(bytes); id >= 0) return id;
  if (const int32_t id = m.vocab.find(content); id >= 0) return id;
  return -1;
}

void choose_eos(const Reader& r, HfTokenizerModel& m) {
  const std::filesystem::path config = std::filesystem::path(r.path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config, ec)) {
    const std::string text = read_whole_file(config.string(), "tokenizer config");
    J c;
    try {
      c = J::parse(text);
    } catch (const J::parse_error& e) {
      fail(config.string(), ": ", json_parse_error_text(e));
    }
    const J* eos = c.is_object() && c.contains("eos_token") && !c["eos_token"].is_null() ? &c["eos_token"] : nullptr;
    if (eos && eos->is_object() && eos->contains("content")) eos = &(*eos)["content"];
    if (eos) {
      if (!eos->is_string()) fail(config.string(), ": eos_token is ", eos->dump(), ", expected a token's text");
      m.eos_id = id_of(m, eos->get<std::string>());
      if (m.eos_id < 0)
        fail(config.string(), ": eos_token '", eos->get<std::string>(), "' is not a token of ", r.path);
      return;
    }
  }
  for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>"})
    for (const auto& t : m.added)
      if (t.special && t.content == name) {
        m.eos_id = t.id;
        return;
      }
  r.bad("no end-of-text token: no special added token is <|endoftext|>, <|end_of_text|> or </s>, and no ",
        "tokenizer_config.json beside it names an eos_token");
}

}  // namespace

std::string byte_level_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) append_utf8(byte_chars()[static_cast<unsigned char>(c)], out);
  return out;
}

bool byte_level_bytes(std::string_view text, std::string& bytes) {
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    const auto c0 = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    if (c0 < 0x80) {
      cp = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size()) {  // the alphabet is below U+0800
      cp = (c0 & 0x1Fu) << 6 | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
      i += 2;
    } else {
      return false;
    }
    if (cp >= char_bytes().size() || char_bytes()[cp] < 0) return false;
    bytes.push_back(static_cast<char>(char_bytes()[cp]));
  }
  return true;
}

HfTokenizerModel read_hf_tokenizer_json(const std::string& path) {
  const std::string text = read_whole_file(path, "tokenizer file");
  const Reader r{path};
  J root;
  try {
    root = J::parse(text);
  } catch (const J::parse_error& e) {
    r.bad(json_parse_error_text(e));
  }
  if (!root.is_object()) r.bad("is ", root.type_name(), ", expected a tokenizer.json object");
  HfTokenizerModel m;
  // The cheap checks first, so an unsupported file fails before its vocab is read.
  const J& model = check_model(r, root);
  if (const J* n = r.member(root, "normalizer")) {
    // NFC, or a Sequence of none or NFC alone (DeepSeek V3 writes an empty one).
    const std::string type = r.type_of(*n, "normalizer");
    const J* list = type == "Sequence" ? r.member(*n, "normalizers") : nullptr;
    const bool empty = list && list->is_array() && list->empty();
    const bool one_nfc = list && list->is_array() && list->size() == 1 && (*list)[0].is_object() &&
                         (*list)[0].value("type", "") == "NFC";
    if (type != "NFC" && !one_nfc && !empty) r.bad("normalizer '", type, "' is not supported (only none or NFC)");
    m.nfc = !empty;
  }
  read_pre_tokenizer(r, r.member(root, "pre_tokenizer"), m);
  const J* decoder = r.member(root, "decoder");
  if (!decoder) r.bad("decoder is missing (byte-level BPE needs ByteLevel)");
  if (const std::string t = r.type_of(*decoder, "decoder"); t != "ByteLevel")
    r.bad("decoder '", t, "' is not supported (byte-level BPE needs ByteLevel)");
  read_model(r, model, m);
  read_added_tokens(r, root, m);
  choose_eos(r, m);
  return m;
}

}  // namespace dt
