#include "data/tiktoken_bpe.hpp"

#include <algorithm>
#include <functional>
#include <limits>

#include "core/error.hpp"

namespace dt {
namespace {

// A candidate pair as one key: rank << 32 | merged id, so comparing keys
// compares ranks (a rank has one merged id in both rules); kNone: cannot merge.
constexpr uint64_t kNone = MergeTable::kNone;
uint64_t pack(int32_t rank, int32_t id) { return uint64_t(uint32_t(rank)) << 32 | uint32_t(id); }

int32_t byte_id(const RankTable& ranks, std::string_view piece, size_t i) {
  const int32_t id = ranks.find(piece.substr(i, 1));
  if (id < 0) fail("tokenizer: byte 0x", std::hex, int(static_cast<unsigned char>(piece[i])),
                   " has no token (a vocabulary must give every single byte a token)");
  return id;
}

// tiktoken: the pair [b, e) merges if its bytes are a token; rank = id.
struct TiktokenRule {
  const RankTable& ranks;
  int32_t first(std::string_view piece, size_t i) const { return byte_id(ranks, piece, i); }
  uint64_t pair(std::string_view piece, size_t b, size_t e, int32_t, int32_t) const {
    const int32_t r = ranks.find(piece.substr(b, e - b));
    return r < 0 ? kNone : pack(r, r);
  }
};

// Hugging Face: the pair merges if (left id, right id) is a listed merge.
struct MergeListRule {
  const RankTable& vocab;
  const MergeTable& merges;
  int32_t first(std::string_view piece, size_t i) const { return byte_id(vocab, piece, i); }
  uint64_t pair(std::string_view, size_t, size_t, int32_t left, int32_t right) const {
    return merges.find(left, right);
  }
};

// The scan: parts are kept as arrays (first byte, id, key of the pair with the
// next part); each step finds the lowest key by a linear pass (strict '<', so
// the leftmost wins a tie) and merges it. Scratch buffers are per thread: no
// allocation once they have grown.
template <class Rule>
void scan_merge(const Rule& rule, std::string_view piece, std::vector<int32_t>& out) {
  thread_local std::vector<uint32_t> start;  // start[i]: first byte of part i; start[m] = n
  thread_local std::vector<int32_t> id;      // id[i]: token id of part i
  thread_local std::vector<uint64_t> pair;   // pair[i]: key of parts i and i+1 merged
  const size_t n = piece.size();
  start.resize(n + 1);
  id.resize(n);
  pair.resize(n);
  for (size_t i = 0; i <= n; ++i) start[i] = static_cast<uint32_t>(i);
  for (size_t i = 0; i < n; ++i) id[i] = rule.first(piece, i);
  auto key = [&](size_t i) { return rule.pair(piece, start[i], start[i + 2], id[i], id[i + 1]); };
  size_t m = n;  // number of parts
  for (size_t i = 0; i + 1 < m; ++i) pair[i] = key(i);
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i)
      if (pair[i] < pair[best]) best = i;
    if (pair[best] == kNone) break;
    // Parts best and best+1 become one: drop entry best+1 of each array.
    id[best] = static_cast<int32_t>(uint32_t(pair[best]));
    std::copy(start.begin() + best + 2, start.begin() + m + 1, start.begin() + best + 1);
    std::copy(id.begin() + best + 2, id.begin() + m, id.begin() + best + 1);
    if (best + 2 < m) std::copy(pair.begin() + best + 2, pair.begin() + m - 1, pair.begin() + best + 1);
    --m;
    pair[best] = best + 2 <= m ? key(best) : kNone;
    if (best > 0) pair[best - 1] = key(best - 1);
  }
  out.insert(out.end(), id.begin(), id.begin() + m);
}

// The heap: parts form a linked list named by their first byte; a min-heap
// holds (rank << 32 | first byte) for candidate pairs, so the lowest rank, then
// the leftmost pair, comes out first -- the scan's choice. Entries made stale
// by a merge are skipped when popped (their part is gone or its rank changed).
template <class Rule>
void heap_merge(const Rule& rule, std::string_view piece, std::vector<int32_t>& out) {
  const uint32_t n = static_cast<uint32_t>(piece.size());
  constexpr uint32_t kGone = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> next(n), prev(n);  // next[s] == kGone: part s was merged away
  std::vector<int32_t> id(n);              // token id of part s
  std::vector<uint64_t> pair(n, kNone);    // key of part s merged with next[s]
  std::vector<uint64_t> heap;
  auto update = [&](uint32_t s) {
    const uint32_t e = next[s];
    pair[s] = e < n ? rule.pair(piece, s, next[e], id[s], id[e]) : kNone;  // next[e] <= n: e is alive
    if (pair[s] != kNone) {
      heap.push_back((pair[s] >> 32) << 32 | s);
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (uint32_t s = 0; s < n; ++s) {
    next[s] = s + 1;  // n: end of the piece
    prev[s] = s - 1;  // unused for s = 0
    id[s] = rule.first(piece, s);
  }
  for (uint32_t s = 0; s + 1 < n; ++s) update(s);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t key = heap.back();
    heap.pop_back();
    const uint32_t s = static_cast<uint32_t>(key);
    if (next[s] == kGone || pair[s] == kNone || (pair[s] >> 32) != (key >> 32)) continue;
    const uint32_t e = next[s];
    id[s] = static_cast<int32_t>(uint32_t(pair[s]));
    next[s] = next[e];
    if (next[e] < n) prev[next[e]] = s;
    next[e] = kGone;
    update(s);
    if (s > 0) update(prev[s]);
  }
  for (uint32_t s = 0; s < n; s = next[s]) out.push_back(id[s]);
}

template <class Rule>
void merge(const Rule& rule, std::string_view piece, std::vector<int32_t>& out, bool reference) {
  DT_CHECK(piece.size() < std::numeric_limits<uint32_t>::max());
  if (reference || piece.size() <= kBpeScanMaxBytes) {
    scan_merge(rule, piece, out);
  } else {
    heap_merge(rule, piece, out);
  }
}

}  // namespace

uint64_t MergeTable::mix(uint64_t key) {
  key = (key ^ (key >> 31)) * 0xbf58476d1ce4e5b9ull;
  return key ^ (key >> 29);
}

void MergeTable::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  DT_CHECK(left >= 0 && right >= 0 && rank >= 0 && merged >= 0);
  if (2 * (count_ + 1) > slots_.size()) {  // keep the load factor <= 1/2
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, 2 * old.size()), Slot{});
    mask_ = slots_.size() - 1;
    count_ = 0;
    for (const Slot& s : old)
      if (s.key != kNone) add(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), int32_t(s.value >> 32),
                              int32_t(uint32_t(s.value)));
  }
  const uint64_t key = uint64_t(uint32_t(left)) << 32 | uint32_t(right);
  size_t i = mix(key) & mask_;
  while (slots_[i].key != kNone && slots_[i].key != key) i = (i + 1) & mask_;
  if (slots_[i].key == kNone) ++count_;
  slots_[i] = Slot{key, pack(rank, merged)};
}

uint64_t MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return kNone;
  const uint64_t key = uint64_t(uint32_t(left)) << 32 | uint32_t(right);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return slots_[i].value;
    if (slots_[i].key == kNone) return kNone;
  }
}

void bpe_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  merge(TiktokenRule{ranks}, piece, out, false);
}

void bpe_merge_reference(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  merge(TiktokenRule{ranks}, piece, out, true);
}

void bpe_merge_pairs(const RankTable& vocab, const MergeTable& merges, std::string_view piece,
                     std::vector<int32_t>& out) {
  merge(MergeListRule{vocab, merges}, piece, out, false);
}

void bpe_merge_pairs_reference(const RankTable& vocab, const MergeTable& merges, std::string_view piece,
                               std::vector<int32_t>& out) {
  merge(MergeListRule{vocab, merges}, piece, out, true);
}

}  // namespace dt
