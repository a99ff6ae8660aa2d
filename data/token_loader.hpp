// The training loader (first version): every token of every shard in memory,
// samples of seq_len+1 consecutive tokens, visited in a seeded per-epoch
// permutation (data/sample_order.hpp). Sample i of the token stream starts at
// token i*seq_len, so neighbouring samples share one boundary token and
// num_samples = (N - 1) / seq_len. All const methods are thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

class TokenLoader {
 public:
  // paths: shard files, directories of *.h5 shards, or globs, read in the
  // given order (directory contents sorted by name). Every shard must agree
  // on tokenizer, vocab_size and eos_id.
  TokenLoader(const std::vector<std::string>& paths, int seq_len, uint64_t seed);

  int64_t num_samples() const { return num_samples_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t num_shards() const { return num_shards_; }
  int64_t vocab_size() const { return vocab_size_; }
  int32_t eos_id() const { return eos_id_; }
  const std::string& tokenizer() const { return tokenizer_; }
  int seq_len() const { return seq_len_; }

  // Writes seq_len+1 tokens of the global_index-th sample drawn (any value
  // >= 0; epoch = global_index / num_samples) to out.
  void sample(int64_t global_index, int32_t* out) const;
  // The window sample(global_index) reads, as its start token in the stream.
  int64_t sample_start(int64_t global_index) const;
  // Entropy of the unigram distribution of all loaded tokens, in nats: the
  // loss a model that ignores context would reach.
  double unigram_entropy_nats() const { return unigram_entropy_; }

 private:
  int seq_len_;
  uint64_t seed_;
  std::vector<int32_t> tokens_;
  int64_t num_samples_ = 0, num_shards_ = 0, vocab_size_ = 0;
  int32_t eos_id_ = 0;
  std::string tokenizer_;
  double unigram_entropy_ = 0;
};

}  // namespace dt
