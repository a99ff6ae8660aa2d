// The mergeable ranks of a tiktoken encoding: token bytes <-> rank (the rank is
// the token id). Loaded from a `.tiktoken` file, one `base64(token_bytes) rank`
// per line. Lookups by bytes go through an open-addressing hash table (8 bytes
// a slot, bytes kept in one arena) because BPE does one lookup per candidate pair.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dt {

// Standard base64 (RFC 4648 alphabet, '=' padding required to a multiple of 4).
// std::nullopt if `text` is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

class RankTable {
 public:
  // Reads a .tiktoken file; a missing file or a malformed line throws a
  // one-line dt::Error naming the file (and the line).
  static RankTable load(const std::string& path);
  // From (bytes, rank) pairs; for tests. Same checks as load.
  static RankTable from_pairs(const std::vector<std::pair<std::string, int32_t>>& pairs,
                              const std::string& what = "rank table");

  // The rank of the token whose bytes are exactly `bytes`, or -1.
  int32_t find(std::string_view bytes) const {
    if (bytes.size() > max_token_bytes_ || bytes.empty()) return -1;
    const uint64_t h = hash(bytes);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.rank < 0) return -1;
      if (s.tag == tag && token(s.rank) == bytes) return s.rank;
    }
  }
  // The bytes of token `rank`; empty if no token has that rank.
  std::string_view token(int32_t rank) const {
    const Span& s = spans_[static_cast<size_t>(rank)];
    return {arena_.data() + s.offset, s.size};
  }
  bool has(int32_t rank) const { return rank >= 0 && rank < end_rank() && spans_[rank].size > 0; }
  int32_t end_rank() const { return static_cast<int32_t>(spans_.size()); }  // max rank + 1
  int64_t count() const { return count_; }                                   // number of tokens

  static uint64_t hash(std::string_view bytes);

 private:
  struct Slot {
    uint32_t tag;
    int32_t rank;  // -1: empty
  };
  struct Span {
    uint32_t offset, size;
  };
  std::string arena_;         // every token's bytes, back to back
  std::vector<Span> spans_;   // rank -> bytes in arena_ (size 0: no such rank)
  std::vector<Slot> slots_;   // power-of-two table, load factor <= 1/2
  size_t mask_ = 0;
  size_t max_token_bytes_ = 0;
  int64_t count_ = 0;
};

}  // namespace dt
