// Incremental decoding with a key/value cache, for both attention kinds
// (differential and standard, grouped-query included), on the weights of a
// whole single-process Transformer (DESIGN §2).
//
// Appended tokens at positions p .. p+n−1 run the model's one layer forward
// (model/layer.hpp) with this decoder's KV cache: their keys and values join
// the cache and their queries attend to every cached position up to their
// own; then the final norm and the LM head on the last row only. A block of
// tokens (a prompt) costs GEMMs, not GEMVs.
//
// Everything (cache and scratch) is allocated once at construction for
// `capacity` positions; appending allocates nothing.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/arena.hpp"
#include "model/transformer.hpp"

namespace dt {

class KvCacheDecoder {
 public:
  // model: the whole model on this process, on the CPU; it must outlive the
  // decoder (the decoder reads its weights in place). capacity: positions the
  // cache holds (prompt + new tokens). max_chunk: rows processed per block;
  // a longer append is split into blocks of this size (bounds the scratch).
  KvCacheDecoder(const Transformer& model, int capacity, int max_chunk = 128);

  // Appends tokens at positions length() .. length()+n−1 and returns the
  // logits (V) predicting the token after the last of them. The span stays
  // valid until the next append. Errors: an empty append, a token outside
  // [0, V), or more tokens than the capacity left.
  std::span<const float> append(std::span<const int32_t> tokens);
  // One step of decoding: feeds `token` and returns the next token's logits.
  std::span<const float> next_token_logits(int32_t token) { return append(std::span<const int32_t>(&token, 1)); }

  // Forgets positions >= n (0 <= n <= length()), e.g. to score several
  // continuations of one shared prefix. logits() is stale until the next append.
  void truncate(int n);
  void reset() { truncate(0); }

  std::span<const float> logits() const { return {logits_.f32(), size_t(logits_.numel())}; }
  int length() const { return len_; }
  int capacity() const { return cap_; }
  const ModelConfig& config() const { return model_.config(); }

 private:
  void build(Arena& a);
  // n tokens (n <= max_chunk) at positions len_ .. len_+n−1.
  void forward_chunk(const int32_t* tokens, int n);

  const Transformer& model_;
  int cap_, chunk_, len_ = 0;
  int64_t V_;
  Arena arena_;
  KvCache cache_;         // every layer's keys and values, cap_ positions
  SequenceBuffers buf_;   // one chunk's layer buffers (max_chunk rows)
  Tensor lnf_, rstdf_, logits_;  // (1,D) (1) (1,V): the last row's head
};

}  // namespace dt
