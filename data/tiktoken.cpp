#include "data/tiktoken.hpp"

#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "data/tiktoken_bpe.hpp"

namespace dt {
namespace {

struct EncodingSpec {
  const char* name;
  int32_t ranks;  // the rank file holds exactly ranks 0..ranks-1
  std::vector<std::pair<std::string, int32_t>> specials;  // EOS (<|endoftext|>) first
};

// tiktoken's definitions of these encodings (special tokens and their ids).
const std::vector<EncodingSpec>& encodings() {
  static const std::vector<EncodingSpec> all = {
      {"cl100k_base",
       100256,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"r50k_base", 50256, {{"<|endoftext|>", 50256}}},
  };
  return all;
}

std::string supported_list() {
  std::string s;
  for (const auto& e : encodings()) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

}  // namespace

std::vector<std::string> TiktokenTokenizer::supported_encodings() {
  std::vector<std::string> names;
  for (const auto& e : encodings()) names.emplace_back(e.name);
  return names;
}

TiktokenTokenizer::TiktokenTokenizer(const std::string& path) {
  encoding_ = std::filesystem::path(path).stem().string();
  const EncodingSpec* spec = nullptr;
  for (const auto& e : encodings())
    if (encoding_ == e.name) spec = &e;
  if (!spec || !Pretokenizer::has_pattern(encoding_)) {
    fail("tokenizer rank file ", path, ": unknown encoding '", encoding_, "' (the file's stem names the encoding: ",
         supported_list(), ")");
  }
  ranks_ = RankTable::load(path);
  if (ranks_.count() != spec->ranks || ranks_.end_rank() != spec->ranks) {
    fail("tokenizer rank file ", path, ": has ", ranks_.count(), " tokens with ranks up to ", ranks_.end_rank() - 1,
         ", but ", encoding_, " has ranks 0..", spec->ranks - 1, " (a different or damaged file?)");
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (ranks_.find(std::string_view(&c, 1)) < 0)
      fail("tokenizer rank file ", path, ": byte ", b, " has no token (every single byte needs one)");
  }
  specials_ = spec->specials;
  eos_id_ = specials_.front().second;
  vocab_size_ = ranks_.end_rank();
  for (const auto& [text, id] : specials_) vocab_size_ = std::max<int64_t>(vocab_size_, id + 1);
  pretok_ = std::make_unique<Pretokenizer>(encoding_);
}

TiktokenTokenizer::~TiktokenTokenizer() = default;

void TiktokenTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  // A piece that is itself a token costs one lookup and skips the cache.
  if (const int32_t id = ranks_.find(piece); id >= 0) {
    out.push_back(id);
    return;
  }
  cache_.encode(piece, out, [this](std::string_view p, std::vector<int32_t>& o) { bpe_merge(ranks_, p, o); });
}

void TiktokenTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  pretok_->split(text, [&](std::string_view piece) { encode_piece(piece, out); });
}

std::vector<int32_t> TiktokenTokenizer::encode(std::string_view text) const {
  std::string repaired;
  if (!is_valid_utf8(text)) text = repaired = replace_invalid_utf8(text);
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 16);
  encode_ordinary(text, out);
  return out;
}

std::vector<int32_t> TiktokenTokenizer::encode_with_special(std::string_view text) const {
  std::string repaired;
  if (!is_valid_utf8(text)) text = repaired = replace_invalid_utf8(text);
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 16);
  for (size_t pos = 0; pos < text.size();) {
    size_t at = std::string_view::npos;
    const std::pair<std::string, int32_t>* special = nullptr;
    for (const auto& s : specials_) {
      const size_t f = text.find(s.first, pos);
      if (f < at) {
        at = f;
        special = &s;
      }
    }
    encode_ordinary(text.substr(pos, special ? at - pos : std::string_view::npos), out);
    if (!special) break;
    out.push_back(special->second);
    pos = at + special->first.size();
  }
  return out;
}

std::string TiktokenTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (const int32_t id : ids) {
    if (ranks_.has(id)) {
      out += ranks_.token(id);
      continue;
    }
    if (id == eos_id_) continue;
    const std::string* text = nullptr;
    for (const auto& s : specials_)
      if (s.second == id) text = &s.first;
    if (text) {
      out += *text;
    } else if (id < 0 || id >= vocab_size_) {
      fail(encoding_, ": cannot decode token id ", id, " (expected 0..", vocab_size_ - 1, ")");
    } else {
      fail(encoding_, ": cannot decode token id ", id, " (no token has this id)");
    }
  }
  return out;
}

std::unique_ptr<Tokenizer> make_tiktoken_tokenizer(const std::string& path) {
  return std::make_unique<TiktokenTokenizer>(path);
}

}  // namespace dt
