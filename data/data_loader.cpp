#include "data/data_loader.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/rng.hpp"
#include "data/blend_schedule.hpp"
#include "data/dataset_index.hpp"
#include "data/dataset_manifest.hpp"
#include "data/shard_reader.hpp"

namespace dt {
namespace {

// Open shard files, at most kMaxOpen at a time: a dataset may have thousands
// of shards and a process a limited number of file descriptors. The least
// recently used one is closed first. Lives on the prefetch thread only.
class ShardCache {
 public:
  static constexpr int kMaxOpen = 64;
  explicit ShardCache(size_t num_shards) : readers_(num_shards), last_use_(num_shards, 0) {}

  const ShardReader& get(int id, const std::string& path) {
    last_use_[id] = ++clock_;
    if (readers_[id]) return *readers_[id];
    if (open_ == kMaxOpen) {
      int oldest = -1;
      for (size_t i = 0; i < readers_.size(); ++i)
        if (readers_[i] && (oldest < 0 || last_use_[i] < last_use_[oldest])) oldest = static_cast<int>(i);
      readers_[oldest].reset();
      --open_;
    }
    readers_[id] = std::make_unique<ShardReader>(path);
    ++open_;
    return *readers_[id];
  }

 private:
  std::vector<std::unique_ptr<ShardReader>> readers_;  // by global shard id; null when closed
  std::vector<uint64_t> last_use_;
  uint64_t clock_ = 0;
  int open_ = 0;
};

}  // namespace

struct DataLoader::Impl {
  std::vector<DatasetSpec> specs;
  LoaderOptions opt;
  std::unique_ptr<BlendSchedule> blend;

  // Filled by the prefetch thread's metadata pass; read-only once the
  // constructor has seen meta_done.
  std::vector<DatasetInfo> infos;
  std::vector<DatasetIndex> index;
  std::vector<int> shard_base;  // global shard id of each dataset's first shard
  int num_shards = 0;
  std::string tokenizer;
  int64_t vocab = 0;
  int32_t eos = 0;
  int64_t token_limit = 0;  // every id must be below this: min(shard, model vocab_size)

  // Shared between next()/restore() and the prefetch thread, under mu.
  struct Batch {
    int64_t m;  // micro-batch number on this rank
    std::vector<int32_t> tokens;
  };
  mutable std::mutex mu;
  std::condition_variable to_producer, to_consumer;
  bool meta_done = false, stop = false;
  std::exception_ptr error;  // first failure of the current generation
  uint64_t generation = 0;   // bumped by restore(): older reads are dropped
  int64_t produce_m = 0;     // next micro-batch the thread reads
  int64_t consume_m = 0;     // next micro-batch next() returns
  std::deque<Batch> queue;
  std::vector<std::vector<int32_t>> spare;  // buffers to reuse: no allocation in steady state
  double wait_s = 0;
  int64_t waits = 0;
  std::thread thread;

  int64_t row() const { return int64_t(opt.seq_len) + 1; }
  int64_t samples_per_micro_batch() const { return opt.micro_batch * opt.dp_size; }
  void run();
  void load_metadata();
  void read_micro_batch(int64_t m, int32_t* out, ShardCache& cache) const;
};

void DataLoader::Impl::load_metadata() {
  std::string first;  // the shard every other one must agree with
  for (size_t d = 0; d < specs.size(); ++d) {
    const std::string& name = specs[d].path;
    std::vector<ShardInput> shards;
    for (const ListedShard& listed : dataset_shards(name)) {
      const std::string& file = listed.path;
      const ShardReader shard = open_listed_shard(listed);
      const ShardMeta& m = shard.meta();
      if (!opt.tokenizer.empty() && m.tokenizer != opt.tokenizer)
        fail("shard ", file, ": tokenizer is \"", m.tokenizer, "\", expected \"", opt.tokenizer,
             "\" (the config's data.tokenizer)");
      if (opt.model_vocab_size > 0 && m.vocab_size > opt.model_vocab_size)
        fail("shard ", file, ": vocab_size ", m.vocab_size, " is larger than the model's vocab_size ",
             opt.model_vocab_size, " (expected at most that)");
      if (first.empty()) {
        first = file;
        tokenizer = m.tokenizer;
        vocab = m.vocab_size;
        eos = m.eos_id;
      } else if (m.tokenizer != tokenizer || m.vocab_size != vocab || m.eos_id != eos) {
        fail("shard ", file, ": tokenizer \"", m.tokenizer, "\" (vocab_size ", m.vocab_size, ", eos_id ",
             m.eos_id, ") differs from shard ", first, ": \"", tokenizer, "\" (vocab_size ", vocab, ", eos_id ",
             eos, ")");
      }
      // Only the long windows outlive the reader, not its /doc_offsets.
      shards.push_back({file, m.num_tokens,
                        DatasetIndex::long_windows_of(shard.doc_offsets(), opt.seq_len, opt.long_doc_tokens)});
    }
    const int64_t num_shards_d = static_cast<int64_t>(shards.size());
    const uint64_t seed_d = rng_bits(opt.seed, hash_name("data.datasets"), d);
    index.emplace_back(name, std::move(shards), opt.seq_len, seed_d, opt.long_doc_factor);
    shard_base.push_back(num_shards);
    num_shards += static_cast<int>(num_shards_d);
    const DatasetIndex& ix = index.back();
    infos.push_back({name, 0.0, ix.num_tokens(), ix.num_samples(), num_shards_d, ix.num_long_samples(),
                     ix.samples_per_epoch()});
  }
  token_limit = opt.model_vocab_size > 0 ? std::min(vocab, opt.model_vocab_size) : vocab;
}

// The rows of micro-batch m of this rank into out (micro_batch, T+1).
void DataLoader::Impl::read_micro_batch(int64_t m, int32_t* out, ShardCache& cache) const {
  const int64_t T1 = row();
  for (int64_t b = 0; b < opt.micro_batch; ++b) {
    const int64_t g = m * samples_per_micro_batch() + opt.dp_rank * opt.micro_batch + b;
    const auto [d, j] = blend->locate(g);
    const DatasetIndex::Window w = index[d].at(j);
    const ShardWindows& s = index[d].shards()[w.shard];
    int32_t* dst = out + b * T1;
    cache.get(shard_base[d] + w.shard, s.path).read_tokens(w.start, w.start + T1, dst);
    for (int64_t i = 0; i < T1; ++i)
      if (dst[i] < 0 || dst[i] >= token_limit)
        fail("shard ", s.path, ": token at position ", w.start + i, " is ", dst[i], ", expected below ",
             token_limit, " (shard vocab_size ", vocab, ", model vocab_size ",
             opt.model_vocab_size > 0 ? opt.model_vocab_size : vocab, ")");
  }
}

// The prefetch thread: metadata first, then micro-batches produce_m,
// produce_m+1, ... until `prefetch` are queued. It alone calls HDF5.
void DataLoader::Impl::run() {
  // The HDF5 build is thread-safe with per-thread error stacks: failures on
  // this thread are reported as one line, not HDF5's dump.
  h5_silence_errors();
  std::unique_lock lk(mu);
  try {
    lk.unlock();
    load_metadata();
    lk.lock();
    meta_done = true;
    to_consumer.notify_all();
    ShardCache cache(num_shards);
    for (;;) {
      to_producer.wait(lk, [&] { return stop || (!error && static_cast<int>(queue.size()) < opt.prefetch); });
      if (stop) return;
      const int64_t m = produce_m++;
      const uint64_t gen = generation;
      std::vector<int32_t> buf;
      if (!spare.empty()) {
        buf = std::move(spare.back());
        spare.pop_back();
      }
      lk.unlock();
      std::exception_ptr err;
      try {
        buf.resize(opt.micro_batch * row());
        read_micro_batch(m, buf.data(), cache);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      if (gen != generation) {  // restore() moved on while we read
        spare.push_back(std::move(buf));
        continue;
      }
      if (err) error = err;
      else queue.push_back({m, std::move(buf)});
      to_consumer.notify_all();
    }
  } catch (...) {  // metadata failure: the constructor rethrows it
    if (!lk.owns_lock()) lk.lock();
    error = std::current_exception();
    to_consumer.notify_all();
  }
}

DataLoader::DataLoader(const std::vector<DatasetSpec>& datasets, const LoaderOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.specs = datasets;
  I.opt = opt;
  if (datasets.empty()) fail("data: no datasets given (expected data.datasets: a list of {path, weight})");
  if (opt.seq_len < 1) fail("data: seq_len ", opt.seq_len, " must be at least 1");
  if (opt.micro_batch < 1) fail("data: micro_batch ", opt.micro_batch, " must be at least 1");
  if (opt.dp_size < 1 || opt.dp_rank < 0 || opt.dp_rank >= opt.dp_size)
    fail("data: dp_rank ", opt.dp_rank, " must be in [0, dp_size = ", opt.dp_size, ")");
  if (opt.prefetch < 1) fail("data: prefetch ", opt.prefetch, " must be at least 1");
  if (opt.long_doc_tokens < 0)
    fail("data: long_doc_tokens ", opt.long_doc_tokens, " must not be negative (0 = no long-document up-sampling)");
  if (opt.long_doc_factor < 1)
    fail("data: long_doc_factor ", opt.long_doc_factor, " must be at least 1 (1 = no long-document up-sampling)");
  if (opt.model_vocab_size < 0) fail("data: model vocab_size ", opt.model_vocab_size, " must not be negative");
  std::vector<double> weights;
  double total = 0;
  for (const auto& d : datasets) {
    if (!std::isfinite(d.weight) || d.weight <= 0)
      fail("dataset ", d.path, ": weight ", d.weight, " must be a finite number > 0");
    weights.push_back(d.weight);
    total += d.weight;
  }
  I.blend = std::make_unique<BlendSchedule>(weights);

  I.thread = std::thread([&I] { I.run(); });
  std::unique_lock lk(I.mu);
  I.to_consumer.wait(lk, [&] { return I.meta_done || I.error; });
  if (!I.meta_done) {
    lk.unlock();
    I.thread.join();
    std::rethrow_exception(I.error);
  }
  for (size_t d = 0; d < I.infos.size(); ++d) I.infos[d].weight = weights[d] / total;
  lk.unlock();
  for (const auto& d : I.infos)
    log_info("data: ", d.path, " (weight ", d.weight, "): ", d.num_shards, " shard(s), ", d.num_tokens,
             " tokens, ", d.num_samples, " samples of ", opt.seq_len + 1, " tokens");
  log_info("data: tokenizer ", I.tokenizer, ", vocab_size ", I.vocab, ", eos_id ", I.eos, "; rank ",
           opt.dp_rank, "/", opt.dp_size, " reads ", opt.micro_batch, " sequences per micro-batch, ",
           opt.prefetch, " prefetched");
}

DataLoader::~DataLoader() {
  if (!impl_ || !impl_->thread.joinable()) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->to_producer.notify_all();
  impl_->thread.join();
}

void DataLoader::next(int32_t* out) {
  Impl& I = *impl_;
  std::unique_lock lk(I.mu);
  if (I.queue.empty() && !I.error) {
    ++I.waits;
    const auto t0 = std::chrono::steady_clock::now();
    I.to_consumer.wait(lk, [&] { return !I.queue.empty() || I.error; });
    I.wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // Ready batches precede a failure (the thread reads in order): deliver them first.
  if (I.queue.empty()) std::rethrow_exception(I.error);
  Impl::Batch& b = I.queue.front();
  DT_CHECK(b.m == I.consume_m, "queued micro-batch ", b.m, " expected ", I.consume_m);
  std::memcpy(out, b.tokens.data(), sizeof(int32_t) * b.tokens.size());
  I.spare.push_back(std::move(b.tokens));
  I.queue.pop_front();
  ++I.consume_m;
  lk.unlock();
  I.to_producer.notify_one();
}

int64_t DataLoader::state() const {
  std::lock_guard lk(impl_->mu);
  return impl_->consume_m * impl_->samples_per_micro_batch();
}

void DataLoader::restore(int64_t samples_consumed) {
  Impl& I = *impl_;
  const int64_t per = I.samples_per_micro_batch();
  if (samples_consumed < 0 || samples_consumed % per != 0)
    fail("data: cannot resume at ", samples_consumed, " samples consumed: expected a multiple of micro_batch ",
         I.opt.micro_batch, " x dp_size ", I.opt.dp_size, " = ", per);
  {
    std::lock_guard lk(I.mu);
    ++I.generation;
    for (auto& b : I.queue) I.spare.push_back(std::move(b.tokens));
    I.queue.clear();
    I.error = nullptr;
    I.produce_m = I.consume_m = samples_consumed / per;
  }
  I.to_producer.notify_all();
}

const std::vector<DataLoader::DatasetInfo>& DataLoader::datasets() const { return impl_->infos; }
int64_t DataLoader::vocab_size() const { return impl_->vocab; }
int32_t DataLoader::eos_id() const { return impl_->eos; }
const std::string& DataLoader::tokenizer() const { return impl_->tokenizer; }
int DataLoader::seq_len() const { return impl_->opt.seq_len; }

double DataLoader::wait_seconds() const {
  std::lock_guard lk(impl_->mu);
  return impl_->wait_s;
}

int64_t DataLoader::times_waited() const {
  std::lock_guard lk(impl_->mu);
  return impl_->waits;
}

int DataLoader::ready() const {
  std::lock_guard lk(impl_->mu);
  return static_cast<int>(impl_->queue.size());
}

std::pair<int, int64_t> DataLoader::locate(int64_t g) const { return impl_->blend->locate(g); }

}  // namespace dt
