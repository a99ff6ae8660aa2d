// Ordered parallel tokenization for difftron prepare.
//
//   caller thread ──push(batch seq 0,1,2,...)──> work queue ──> N worker threads
//                                                               (Tokenizer::encode)
//   consume(batch) on one writer thread <── in seq order <── finished batches
//
// The caller reads documents in input order and pushes them in batches; workers
// tokenize batches in any order; the writer thread hands them to `consume`
// strictly in push order, so the output never depends on the thread count.
// At most 2 * threads + 2 batches are in flight (pushed, not yet consumed):
// push() blocks beyond that, which bounds memory. Only the writer thread calls
// `consume`, so it may own non-thread-safe state (HDF5 files).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer.hpp"

namespace dt {

// Consecutive documents: the reader fills texts, a worker the token ids.
struct DocBatch {
  std::vector<std::string> texts;
  int64_t text_bytes = 0;
  int64_t input_offset = 0;     // progress measure (input bytes read) when the batch was closed
  std::vector<int32_t> tokens;  // every document's ids, concatenated, no EOS
  std::vector<size_t> ends;     // ends[i]: one past document i's last id in tokens
};

class TokenizePipeline {
 public:
  using Consume = std::function<void(const DocBatch&)>;

  TokenizePipeline(const Tokenizer& tok, int threads, Consume consume);
  // Stops the threads without consuming what is left (an error path) unless finish() ran.
  ~TokenizePipeline();
  TokenizePipeline(const TokenizePipeline&) = delete;
  TokenizePipeline& operator=(const TokenizePipeline&) = delete;

  // Queues the next batch, blocking while too many are in flight. Returns false
  // (dropping the batch) once a worker or `consume` has failed: stop reading and
  // call finish(), which rethrows that error.
  bool push(std::unique_ptr<DocBatch> batch);
  // Waits until every pushed batch is consumed and joins the threads; rethrows
  // the first error a worker or `consume` threw.
  void finish();

 private:
  void work();
  void write();
  void stop(std::exception_ptr error);  // records the first error and wakes everyone
  void join();

  const Tokenizer& tok_;
  Consume consume_;
  const size_t max_in_flight_;

  std::mutex mu_;
  std::condition_variable work_ready_, done_ready_, space_;
  std::deque<std::pair<int64_t, std::unique_ptr<DocBatch>>> work_;  // (seq, batch) to tokenize
  std::map<int64_t, std::unique_ptr<DocBatch>> done_;               // tokenized, by seq
  int64_t pushed_ = 0;     // batches pushed so far = next seq
  int64_t consumed_ = 0;   // batches consumed so far = seq the writer waits for
  bool closed_ = false;    // no more pushes
  bool stopped_ = false;   // an error: everyone quits
  std::exception_ptr error_;

  std::vector<std::thread> workers_;
  std::thread writer_;
};

}  // namespace dt
