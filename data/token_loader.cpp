#include "data/token_loader.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/file_list.hpp"
#include "data/sample_order.hpp"
#include "data/shard_reader.hpp"

namespace dt {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

double entropy_nats(const std::vector<int32_t>& tokens, int64_t vocab_size) {
  std::vector<int64_t> counts(vocab_size, 0);
  for (int32_t t : tokens) ++counts[t];
  const double n = static_cast<double>(tokens.size());
  double h = 0;
  for (int64_t c : counts)
    if (c > 0) h -= (c / n) * std::log(c / n);
  return h;
}

}  // namespace

TokenLoader::TokenLoader(const std::vector<std::string>& paths, int seq_len, uint64_t seed)
    : seq_len_(seq_len), seed_(seed) {
  if (paths.empty()) fail("no data paths given (expected shard files, directories of *.h5 shards, or globs)");
  if (seq_len < 1) fail("data ", join(paths), ": seq_len ", seq_len, " must be at least 1");

  std::string first;  // the shard whose attributes the others must match
  for (const auto& spec : paths) {
    for (const auto& file : list_files(spec, /*recurse=*/false, ".h5")) {
      ShardReader shard(file);
      const ShardMeta& m = shard.meta();
      if (first.empty()) {
        first = file;
        vocab_size_ = m.vocab_size;
        eos_id_ = m.eos_id;
        tokenizer_ = m.tokenizer;
      } else if (m.vocab_size != vocab_size_ || m.eos_id != eos_id_ || m.tokenizer != tokenizer_) {
        fail("shard ", file, ": tokenizer ", m.tokenizer, " (vocab_size ", m.vocab_size, ", eos_id ", m.eos_id,
             ") differs from ", first, ": ", tokenizer_, " (vocab_size ", vocab_size_, ", eos_id ", eos_id_, ")");
      }
      const size_t at = tokens_.size();
      tokens_.resize(at + m.num_tokens);
      shard.read_tokens(0, m.num_tokens, tokens_.data() + at);
      for (size_t i = at; i < tokens_.size(); ++i)
        if (tokens_[i] < 0 || tokens_[i] >= vocab_size_)
          fail("shard ", file, ": token ", i - at, " is ", tokens_[i], ", outside vocab_size ", vocab_size_);
      ++num_shards_;
    }
  }
  const int64_t n = num_tokens();
  if (n < int64_t(seq_len) + 1)
    fail("data ", join(paths), ": ", n, " tokens is too few for one sample of seq_len+1 = ", seq_len + 1,
         " tokens");
  num_samples_ = (n - 1) / seq_len;
  unigram_entropy_ = entropy_nats(tokens_, vocab_size_);
  log_info("data: ", num_shards_, " shard(s), ", n, " tokens, ", num_samples_, " samples of ", seq_len + 1,
           " tokens (", tokenizer_, ", vocab ", vocab_size_, ", unigram entropy ", unigram_entropy_, " nats)");
}

int64_t TokenLoader::sample_start(int64_t global_index) const {
  DT_CHECK(global_index >= 0, global_index);
  const uint64_t n = static_cast<uint64_t>(num_samples_);
  const uint64_t g = static_cast<uint64_t>(global_index);
  return static_cast<int64_t>(sample_position(g % n, n, seed_, g / n)) * seq_len_;
}

void TokenLoader::sample(int64_t global_index, int32_t* out) const {
  std::memcpy(out, tokens_.data() + sample_start(global_index), sizeof(int32_t) * (seq_len_ + 1));
}

}  // namespace dt
