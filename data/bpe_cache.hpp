// A per-thread, direct-mapped cache of pre-token -> ids, for the BPE
// tokenizers (tiktoken.cpp, hf_tokenizer.cpp): text repeats its words, and a
// cached piece costs one hash and one compare instead of a merge loop. Each
// tokenizer owns a key, and entries carry it, so tokenizers share the
// per-thread table safely (~0.8 MiB a thread).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "data/tiktoken_ranks.hpp"

namespace dt {

class BpeCache {
 public:
  BpeCache();  // takes a fresh owner key

  // Appends the ids of `piece` to `out`: from the cache, or from
  // merge(piece, out), whose result is then cached if it fits an entry.
  template <typename Merge>
  void encode(std::string_view piece, std::vector<int32_t>& out, Merge&& merge) const {
    if (piece.size() > kKeyBytes) {
      merge(piece, out);
      return;
    }
    const uint64_t h = RankTable::hash(piece);
    Entry& e = thread_table()[h & (kEntries - 1)];
    if (e.owner == owner_ && e.hash == h && e.len == piece.size() &&
        std::memcmp(e.key, piece.data(), piece.size()) == 0) {
      out.insert(out.end(), e.ids, e.ids + e.n_ids);
      return;
    }
    const size_t before = out.size();
    merge(piece, out);
    const size_t n = out.size() - before;
    if (n <= kIds) {
      e.owner = owner_;
      e.hash = h;
      e.len = static_cast<uint8_t>(piece.size());
      e.n_ids = static_cast<uint8_t>(n);
      std::memcpy(e.key, piece.data(), piece.size());
      std::copy(out.begin() + before, out.end(), e.ids);
    }
  }

 private:
  static constexpr size_t kEntries = 1 << 13;
  static constexpr size_t kKeyBytes = 38;
  static constexpr size_t kIds = 10;
  struct Entry {
    uint64_t owner = 0;  // 0: empty
    uint64_t hash = 0;
    uint8_t len = 0, n_ids = 0;
    char key[kKeyBytes];
    int32_t ids[kIds];
  };
  static_assert(kKeyBytes < 256 && kIds < 256);
  static Entry* thread_table();
  uint64_t owner_;
};

}  // namespace dt
