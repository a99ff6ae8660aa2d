// The streaming training data loader (DESIGN §5): blended datasets of HDF5
// token shards, read window by window on a prefetch thread.
//
// Global sample stream g = 0, 1, 2, ...: sample g comes from dataset d and is
// sample j of d's own stream, (d, j) = locate(g) (data/blend_schedule.hpp),
// and j names a window of T+1 tokens in a seeded per-epoch order
// (data/dataset_index.hpp), in which windows inside long documents may be
// up-sampled (opt.long_doc_tokens / long_doc_factor). Micro-batch m (counted on each rank) of rank r
// holds samples g = m·(micro_batch·dp_size) + r·micro_batch + b, b <
// micro_batch: with m = step·accum + a, step s's global batch is the
// contiguous range [s·batch_size, (s+1)·batch_size) whatever dp_size is. The
// whole loader state is state() = samples consumed on all ranks, so a run
// resumes exactly under any dp_size whose micro_batch·dp_size divides it.
//
// Threading: one prefetch thread makes every HDF5 call (metadata, opens,
// reads, closes); the constructor waits for its metadata. It keeps up to
// `prefetch` micro-batches ready; next() pops one and blocks only when none
// is ready. A data error on the thread is rethrown by next() (or by the
// constructor, during metadata) with its one-line message.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"

namespace dt {

struct LoaderOptions {
  int seq_len = 0;                 // T: a sample is T+1 tokens
  int64_t micro_batch = 1;         // sequences per micro-batch on this rank
  int dp_rank = 0, dp_size = 1;    // data-parallel position
  uint64_t seed = 0;
  int64_t model_vocab_size = 0;    // every token id must be below this; 0 = the shards' vocab_size
  std::string tokenizer;           // expected shard tokenizer name (tokenizer_name(config data.tokenizer)); empty = don't check
  int prefetch = 8;                // micro-batches kept ready by the prefetch thread
  // Long-document up-sampling (config data.long_doc_tokens / long_doc_factor;
  // the rule is in data/dataset_index.hpp): a window lying inside one
  // document of at least long_doc_tokens tokens (EOS excluded) is read
  // long_doc_factor times per epoch, every other window once. 0 or 1 = off,
  // and the order is then exactly the one without the rule.
  int64_t long_doc_tokens = 0;     // >= 0; 0 = off
  int long_doc_factor = 1;         // >= 1
};

class DataLoader {
 public:
  // Fails with a one-line dt::Error naming the dataset or shard: no datasets,
  // a weight <= 0, long_doc_tokens < 0 or long_doc_factor < 1, a dataset
  // without its manifest or that the manifest does not vouch for
  // (data/dataset_manifest.hpp), a missing or malformed shard, shards that disagree on
  // tokenizer / vocab_size / eos_id, a tokenizer other than opt.tokenizer, a
  // shard vocab_size above opt.model_vocab_size, a dataset without one window
  // of T+1 tokens.
  DataLoader(const std::vector<DatasetSpec>& datasets, const LoaderOptions& opt);
  ~DataLoader();  // stops and joins the prefetch thread
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // This rank's next micro-batch: out (micro_batch, T+1), row b = sample
  // g = m·(micro_batch·dp_size) + dp_rank·micro_batch + b. A token id at or
  // above the vocabulary fails here, naming the shard and token position.
  void next(int32_t* out);
  // Global samples (all dp ranks) consumed = the whole loader state.
  int64_t state() const;
  // Resume so the next micro-batch is the one after `samples_consumed`
  // global samples; must be a multiple of micro_batch·dp_size. Discards the
  // prefetched micro-batches and restarts reading there.
  void restore(int64_t samples_consumed);

  struct DatasetInfo {
    std::string path;
    double weight;  // normalised: the weights sum to 1
    int64_t num_tokens, num_samples, num_shards;
    int64_t num_long_samples;   // windows inside a long document (0 when long_doc_tokens = 0)
    int64_t samples_per_epoch;  // num_samples + (long_doc_factor − 1)·num_long_samples
  };
  const std::vector<DatasetInfo>& datasets() const;
  int64_t vocab_size() const;  // the shards' vocab_size attribute
  int32_t eos_id() const;
  const std::string& tokenizer() const;  // the shards' tokenizer attribute
  int seq_len() const;

  // Total time next() blocked waiting for the prefetch thread, and how many
  // calls had to wait (a call that finds a micro-batch ready never waits).
  double wait_seconds() const;
  int64_t times_waited() const;
  // Micro-batches ready in the queue now (at most opt.prefetch).
  int ready() const;

  // Pure function used by next() and tests: the (dataset, sample-in-dataset-
  // stream index) of global sample g.
  std::pair<int, int64_t> locate(int64_t g) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dt
