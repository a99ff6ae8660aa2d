// Byte-pair merging of one pre-token, as tiktoken defines it: start from single
// bytes; repeatedly merge the adjacent pair whose concatenated bytes have the
// lowest rank (the leftmost such pair on a tie) until no adjacent pair is a
// token; each remaining part's rank is its id.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "data/tiktoken_ranks.hpp"

namespace dt {

// Appends the ids of `piece` to `out`. Pieces up to kBpeScanMaxBytes use the
// plain scan (O(n^2), fastest for the short pieces text is made of); longer
// ones a heap of candidate pairs (O(n log n)), so a megabyte-long "word" (a
// base64 blob) costs milliseconds, not hours. Every single byte must be a token.
void bpe_merge(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out);
inline constexpr size_t kBpeScanMaxBytes = 96;

// The definition above, written as directly as possible (the scan for every
// length); tests compare bpe_merge against it.
void bpe_merge_reference(const RankTable& ranks, std::string_view piece, std::vector<int32_t>& out);

}  // namespace dt
