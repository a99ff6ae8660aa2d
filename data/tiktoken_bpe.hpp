// Byte-pair merging of one pre-token. Both rules below start from the piece's
// single bytes and repeatedly merge the adjacent pair of parts with the lowest
// rank (the leftmost such pair on a tie) until no adjacent pair can merge; they
// differ in which pairs can merge and what their rank is:
//  - tiktoken (bpe_merge): a pair can merge if its concatenated bytes are a
//    token; the rank is that token's rank, which is also its id.
//  - Hugging Face `tokenizers` BPE (bpe_merge_pairs): a pair can merge if
//    (left id, right id) is in the file's merge list; the rank is its position
//    in that list and the merged part's id is the vocabulary id of the
//    concatenation (the MergeTable holds both).
// For the byte-level files converted from tiktoken rank files the two agree.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "data/tiktoken_ranks.hpp"

namespace dt {

// Hugging Face merges: (left id, right id) -> (rank, merged id), in an
// open-addressing table of 16-byte slots (a merge loop does one lookup per
// candidate pair; Llama 3 has 280k merges).
class MergeTable {
 public:
  static constexpr uint64_t kNone = UINT64_MAX;  // "this pair does not merge"
  // Adds or replaces (a later duplicate wins, as in `tokenizers`).
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  // rank << 32 | merged id, or kNone.
  uint64_t find(int32_t left, int32_t right) const;
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t key = kNone;  // left << 32 | right
    uint64_t value = kNone;
  };
  static uint64_t mix(uint64_t key);
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

// Appends the ids of `piece` to `out`. Pieces up to kBpeScanMaxBytes use the
// plain scan (O(n^2), fastest for the short pieces text is made of); longer
// ones a heap of candidate pairs (O(n log n)), so a megabyte-long "word" (a
// base64 blob) costs milliseconds, not hours. Every single byte must be a token.
void bpe_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out);
// The Hugging Face rule: `vocab` maps token bytes to ids, `merges` ranks pairs of ids.
void bpe_merge_pairs(const RankTable& vocab, const MergeTable& merges, std::string_view piece,
                     std::vector<int32_t>& out);
inline constexpr size_t kBpeScanMaxBytes = 96;

// The definitions above, written as directly as possible (the scan for every
// length); tests compare bpe_merge and bpe_merge_pairs against them.
void bpe_merge_reference(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out);
void bpe_merge_pairs_reference(const RankTable& vocab, const MergeTable& merges, std::string_view piece,
                               std::vector<int32_t>& out);

}  // namespace dt
