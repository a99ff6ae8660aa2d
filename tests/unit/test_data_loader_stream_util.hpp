// Helpers for the streaming DataLoader tests: scratch shards on disk and the
// global sample stream reassembled from every dp rank's micro-batches.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/data_loader.hpp"
#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "tests/unit/test_util.hpp"

namespace dt_test {

using Tokens = std::vector<int32_t>;

// Writes a shard of `docs` and returns its token stream (each document followed
// by EOS). Then rewrites its directory's manifest, as difftron prepare would
// after its last shard, so the directory is a complete dataset of every shard so far.
inline Tokens write_shard(const std::string& path, const std::vector<Tokens>& docs, int64_t vocab = 5000,
                          int32_t eos = 0, const std::string& tokenizer = "test") {
  dt::ShardWriter w(path, tokenizer, vocab, eos);
  Tokens stream;
  for (const auto& d : docs) {
    w.add_document(d);
    stream.insert(stream.end(), d.begin(), d.end());
    stream.push_back(eos);
  }
  w.close();
  dt::write_dataset_manifest(std::filesystem::path(path).parent_path().string());
  return stream;
}

// len ids first, first+1, ... (all distinct below 5000 and never the EOS id 0).
inline Tokens counting_doc(int len, int first) {
  Tokens d(len);
  for (int i = 0; i < len; ++i) d[i] = first + i;
  return d;
}

inline dt::LoaderOptions options(int seq_len, int64_t micro_batch, int dp_rank = 0, int dp_size = 1,
                                 uint64_t seed = 7) {
  dt::LoaderOptions o;
  o.seq_len = seq_len;
  o.micro_batch = micro_batch;
  o.dp_rank = dp_rank;
  o.dp_size = dp_size;
  o.seed = seed;
  o.model_vocab_size = 5000;
  o.prefetch = 3;
  return o;
}

// Samples [from, from + count) of the global stream (count a multiple of
// micro_batch·dp_size), read by dp_size loaders that restore(from) and are
// then put back in global order: micro-batch m of rank r holds samples
// m·micro_batch·dp_size + r·micro_batch + b.
inline std::vector<Tokens> global_samples(const std::vector<dt::DatasetSpec>& specs, int seq_len,
                                          int64_t micro_batch, int dp_size, int64_t from, int64_t count) {
  const int64_t per = micro_batch * dp_size, row = seq_len + 1;
  std::vector<Tokens> out(count);
  for (int r = 0; r < dp_size; ++r) {
    dt::DataLoader loader(specs, options(seq_len, micro_batch, r, dp_size));
    loader.restore(from);
    Tokens batch(micro_batch * row);
    for (int64_t m = 0; m < count / per; ++m) {
      loader.next(batch.data());
      for (int64_t b = 0; b < micro_batch; ++b)
        out[m * per + r * micro_batch + b] = Tokens(batch.begin() + b * row, batch.begin() + (b + 1) * row);
    }
    EXPECT_EQ(loader.state(), from + count);
  }
  return out;
}

}  // namespace dt_test
