// Files the analyses (activation statistics, logit quantization, needle
// retrieval) read and write: evaluation windows from prepared shards,
// haystack text from a text file or shards, and their CSV outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"

namespace dt {

class Tokenizer;

// About max_tokens / T windows of T + 1 tokens (at least one, at most every
// window), taken in turn from each shard path (a directory, file or glob) in
// the data loader's seeded order. The shards' tokenizer must be the run's
// data.tokenizer and their ids below model.vocab_size.
std::vector<std::vector<int32_t>> read_eval_windows(const Config& cfg, const std::vector<std::string>& paths,
                                                    int seq_len, int64_t max_tokens, uint64_t seed);

// Up to max_tokens haystack tokens. `path` is token shards when it is a
// directory, a glob or a *.h5 file (documents joined, EOS tokens dropped, so
// the haystack reads as one text); anything else is a UTF-8 text file encoded
// with `tok`. Fails with a one-line error naming the path when it holds no
// tokens or its shards were made by another tokenizer.
std::vector<int32_t> load_haystack(const std::string& path, const Tokenizer& tok, int64_t max_tokens);

// Writes text to path (replacing it); a one-line dt::Error when it cannot.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace dt
