#include "data/prepare_pipeline.hpp"

#include "core/error.hpp"

namespace dt {

TokenizePipeline::TokenizePipeline(const Tokenizer& tok, int threads, Consume consume)
    : tok_(tok), consume_(std::move(consume)), max_in_flight_(2 * static_cast<size_t>(threads) + 2) {
  DT_CHECK(threads >= 1, "threads = ", threads);
  try {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    writer_ = std::thread([this] { write(); });
  } catch (...) {  // std::system_error: cannot start a thread
    stop(std::current_exception());
    join();
    throw;
  }
}

TokenizePipeline::~TokenizePipeline() {
  stop(nullptr);
  join();
}

void TokenizePipeline::stop(std::exception_ptr error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error && !error_) error_ = error;
  stopped_ = true;
  work_ready_.notify_all();
  done_ready_.notify_all();
  space_.notify_all();
}

void TokenizePipeline::join() {
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  if (writer_.joinable()) writer_.join();
}

bool TokenizePipeline::push(std::unique_ptr<DocBatch> batch) {
  std::unique_lock<std::mutex> lock(mu_);
  DT_CHECK(!closed_, "push after finish");
  space_.wait(lock, [&] { return stopped_ || static_cast<size_t>(pushed_ - consumed_) < max_in_flight_; });
  if (stopped_) return false;
  work_.emplace_back(pushed_++, std::move(batch));
  work_ready_.notify_one();
  return true;
}

void TokenizePipeline::work() {
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    work_ready_.wait(lock, [&] { return stopped_ || closed_ || !work_.empty(); });
    if (stopped_ || work_.empty()) return;  // an error, or closed with nothing left
    auto [seq, batch] = std::move(work_.front());
    work_.pop_front();
    lock.unlock();
    try {
      batch->ends.reserve(batch->texts.size());
      for (std::string& text : batch->texts) {
        const std::vector<int32_t> ids = tok_.encode(text);
        batch->tokens.insert(batch->tokens.end(), ids.begin(), ids.end());
        batch->ends.push_back(batch->tokens.size());
        std::string().swap(text);  // the text is not needed any more
      }
    } catch (...) {
      stop(std::current_exception());
      return;
    }
    lock.lock();
    done_.emplace(seq, std::move(batch));
    if (seq == consumed_) done_ready_.notify_one();
  }
}

void TokenizePipeline::write() {
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    done_ready_.wait(lock, [&] {
      return stopped_ || done_.count(consumed_) > 0 || (closed_ && consumed_ == pushed_);
    });
    if (stopped_ || done_.count(consumed_) == 0) return;
    std::unique_ptr<DocBatch> batch = std::move(done_.at(consumed_));
    done_.erase(consumed_);
    lock.unlock();
    try {
      consume_(*batch);
    } catch (...) {
      stop(std::current_exception());
      return;
    }
    batch.reset();
    lock.lock();
    ++consumed_;
    space_.notify_one();
  }
}

void TokenizePipeline::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    work_ready_.notify_all();
    done_ready_.notify_all();
  }
  join();
  std::lock_guard<std::mutex> lock(mu_);
  if (error_) std::rethrow_exception(error_);
  DT_CHECK(consumed_ == pushed_, consumed_, " of ", pushed_, " batches consumed");
}

}  // namespace dt
