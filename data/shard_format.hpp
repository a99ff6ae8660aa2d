// The token shard format (DESIGN §5), named once for the writer and the reader.
#pragma once
#include <cstdint>

namespace dt {

inline constexpr const char* kShardFormat = "difftron-tokens";
inline constexpr int64_t kShardVersion = 1;
inline constexpr const char* kShardTokens = "/tokens";
inline constexpr const char* kShardDocOffsets = "/doc_offsets";
// 64K tokens per chunk: 128 KiB (uint16) fits HDF5's default 1 MiB chunk cache
// many times over and keeps a T+1 window read to one or two chunks.
inline constexpr int64_t kShardChunkTokens = 1 << 16;

// /tokens is uint16 when every id fits, else uint32.
inline bool shard_tokens_are_u16(int64_t vocab_size) { return vocab_size <= 65536; }

}  // namespace dt
