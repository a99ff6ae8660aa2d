#include "data/tiktoken_ranks.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <climits>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace dt {
namespace {

// Ranks index a dense table, so bound them (o200k_base, the largest public
// encoding, has ~200k tokens).
constexpr int32_t kMaxRank = 1 << 26;

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  // The standard alphabet in whole quartets, '=' only as the last one or two
  // characters: checked here, since OpenSSL's EVP_DecodeBlock also skips
  // surrounding whitespace, which a rank file must not hold.
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0 || text.size() > size_t(INT_MAX)) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  if (text.substr(0, text.size() - pad).find_first_not_of(kAlphabet) != std::string_view::npos) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
  if (n < 0 || size_t(n) < pad) return std::nullopt;
  out.resize(size_t(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

// A 64-bit multiply-xorshift hash over 8-byte words; tokens are short (<= 128
// bytes in cl100k_base), so speed on short keys is what matters.
uint64_t RankTable::hash(std::string_view bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  for (size_t k = 0; k < n; ++k) w |= uint64_t(static_cast<unsigned char>(p[k])) << (8 * k);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

RankTable RankTable::from_pairs(const std::vector<std::pair<std::string, int32_t>>& pairs,
                                const std::string& what) {
  RankTable t;
  if (pairs.empty()) fail(what, ": no tokens");
  int32_t max_rank = -1;
  size_t total = 0;
  for (const auto& [bytes, rank] : pairs) {
    if (rank < 0 || rank >= kMaxRank) fail(what, ": rank ", rank, " is outside [0, ", kMaxRank, ")");
    if (bytes.empty()) fail(what, ": rank ", rank, " has an empty token");
    max_rank = std::max(max_rank, rank);
    total += bytes.size();
    t.max_token_bytes_ = std::max(t.max_token_bytes_, bytes.size());
  }
  if (total >= (size_t(1) << 32)) fail(what, ": token bytes exceed 4 GiB");
  t.arena_.reserve(total);
  t.spans_.assign(size_t(max_rank) + 1, Span{0, 0});
  size_t slots = 16;
  while (slots < 2 * pairs.size()) slots *= 2;
  t.slots_.assign(slots, Slot{0, -1});
  t.mask_ = slots - 1;
  for (const auto& [bytes, rank] : pairs) {
    if (t.spans_[rank].size) fail(what, ": rank ", rank, " appears twice");
    t.spans_[rank] = Span{static_cast<uint32_t>(t.arena_.size()), static_cast<uint32_t>(bytes.size())};
    t.arena_ += bytes;
    const uint64_t h = hash(bytes);
    size_t i = h & t.mask_;
    for (; t.slots_[i].rank >= 0; i = (i + 1) & t.mask_)
      if (t.token(t.slots_[i].rank) == bytes)
        fail(what, ": ranks ", t.slots_[i].rank, " and ", rank, " have the same bytes");
    t.slots_[i] = Slot{static_cast<uint32_t>(h >> 32), rank};
  }
  t.count_ = static_cast<int64_t>(pairs.size());
  return t;
}

RankTable RankTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot open tokenizer rank file ", path, " (", std::strerror(errno),
         "; launch/fetch_tokenizers.sh puts cl100k_base and r50k_base in data/tokenizers/)");
  }
  std::vector<std::pair<std::string, int32_t>> pairs;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto bad = [&](const char* why) {
      fail("tokenizer rank file ", path, ":", lineno, ": ", why, " (expected 'BASE64 RANK')");
    };
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) bad("not two fields");
    auto bytes = base64_decode(std::string_view(line).substr(0, sp));
    if (!bytes) bad("token is not valid base64");
    if (bytes->empty()) bad("empty token");
    int32_t rank = -1;
    const char* first = line.data() + sp + 1;
    const char* last = line.data() + line.size();
    auto [end, ec] = std::from_chars(first, last, rank);
    if (ec != std::errc() || end != last || first == last || rank < 0) bad("rank is not a non-negative integer");
    pairs.emplace_back(std::move(*bytes), rank);
  }
  if (in.bad()) fail("cannot read tokenizer rank file ", path);
  if (pairs.empty()) fail("tokenizer rank file ", path, " has no tokens");
  return from_pairs(pairs, "tokenizer rank file " + path);
}

}  // namespace dt
