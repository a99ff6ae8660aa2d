#include "data/tiktoken_bpe.hpp"

#include <algorithm>
#include <functional>
#include <limits>

#include "core/error.hpp"

namespace dt {
namespace {

constexpr int32_t kNone = std::numeric_limits<int32_t>::max();  // "this pair is not a token"

int32_t rank_of(const RankTable& ranks, std::string_view piece, size_t begin, size_t end) {
  const int32_t r = ranks.find(piece.substr(begin, end - begin));
  return r < 0 ? kNone : r;
}

void emit(const RankTable& ranks, std::string_view part, std::vector<int32_t>& out) {
  const int32_t id = ranks.find(part);
  if (id < 0) fail("tokenizer: byte 0x", std::hex, int(static_cast<unsigned char>(part[0])),
                   " has no token (a rank file must give every single byte a rank)");
  out.push_back(id);
}

// The scan: parts are kept as a list of start offsets; each step finds the
// lowest-ranked adjacent pair by a linear pass (strict '<', so the leftmost
// wins a tie) and merges it. Scratch buffers are per thread: no allocation
// once they have grown.
void scan_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  thread_local std::vector<uint32_t> start;  // start[i]: first byte of part i; start[m] = n
  thread_local std::vector<int32_t> pair;    // pair[i]: rank of parts i and i+1 merged, or kNone
  const size_t n = piece.size();
  start.resize(n + 1);
  pair.resize(n);
  for (size_t i = 0; i <= n; ++i) start[i] = static_cast<uint32_t>(i);
  size_t m = n;  // number of parts
  for (size_t i = 0; i + 1 < m; ++i) pair[i] = rank_of(ranks, piece, start[i], start[i + 2]);
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i)
      if (pair[i] < pair[best]) best = i;
    if (pair[best] == kNone) break;
    // Parts best and best+1 become one: drop start[best+1] and pair[best+1].
    std::copy(start.begin() + best + 2, start.begin() + m + 1, start.begin() + best + 1);
    if (best + 2 < m) std::copy(pair.begin() + best + 2, pair.begin() + m - 1, pair.begin() + best + 1);
    --m;
    pair[best] = best + 2 <= m ? rank_of(ranks, piece, start[best], start[best + 2]) : kNone;
    if (best > 0) pair[best - 1] = rank_of(ranks, piece, start[best - 1], start[best + 1]);
  }
  for (size_t i = 0; i < m; ++i) emit(ranks, piece.substr(start[i], start[i + 1] - start[i]), out);
}

// The heap: parts form a linked list named by their first byte; a min-heap
// holds (rank << 32 | first byte) for candidate pairs, so the lowest rank, then
// the leftmost pair, comes out first -- the scan's choice. Entries made stale
// by a merge are skipped when popped (their part is gone or its rank changed).
void heap_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  const uint32_t n = static_cast<uint32_t>(piece.size());
  constexpr uint32_t kGone = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> next(n), prev(n);  // next[s] == kGone: part s was merged away
  std::vector<int32_t> pair(n, kNone);      // rank of part s merged with next[s]
  std::vector<uint64_t> heap;
  auto update = [&](uint32_t s) {
    const uint32_t e = next[s];
    pair[s] = e < n ? rank_of(ranks, piece, s, next[e]) : kNone;  // next[e] <= n: e is alive
    if (pair[s] != kNone) {
      heap.push_back(uint64_t(uint32_t(pair[s])) << 32 | s);
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (uint32_t s = 0; s < n; ++s) {
    next[s] = s + 1;  // n: end of the piece
    prev[s] = s - 1;  // unused for s = 0
  }
  for (uint32_t s = 0; s + 1 < n; ++s) update(s);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t key = heap.back();
    heap.pop_back();
    const uint32_t s = static_cast<uint32_t>(key);
    if (next[s] == kGone || pair[s] != static_cast<int32_t>(key >> 32)) continue;
    const uint32_t e = next[s];
    next[s] = next[e];
    if (next[e] < n) prev[next[e]] = s;
    next[e] = kGone;
    update(s);
    if (s > 0) update(prev[s]);
  }
  for (uint32_t s = 0; s < n; s = next[s]) emit(ranks, piece.substr(s, next[s] - s), out);
}

}  // namespace

void bpe_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  DT_CHECK(piece.size() < std::numeric_limits<uint32_t>::max());
  if (piece.size() <= kBpeScanMaxBytes) {
    scan_merge(ranks, piece, out);
  } else {
    heap_merge(ranks, piece, out);
  }
}

void bpe_merge_reference(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out) {
  DT_CHECK(piece.size() < std::numeric_limits<uint32_t>::max());
  scan_merge(ranks, piece, out);
}

}  // namespace dt
