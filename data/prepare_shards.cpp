#include "data/prepare_shards.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/dataset_manifest.hpp"
#include "data/prepare_pipeline.hpp"
#include "data/prepare_reader.hpp"
#include "data/shard_writer.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

using Clock = std::chrono::steady_clock;

// A batch closes at this much text or this many documents: big enough that
// queue traffic is negligible (a batch is milliseconds of tokenizing), small
// enough that 2 * threads + 2 of them in flight stay small even with 4-byte ids
// per text byte (byte tokenizer): 130 MB at 64 threads.
constexpr int64_t kBatchBytes = int64_t{1} << 18;
constexpr size_t kBatchDocs = 4096;
constexpr int64_t kMaxSkipWarnings = 20;

double seconds_since(Clock::time_point t) {
  return std::max(1e-6, std::chrono::duration<double>(Clock::now() - t).count());
}

// "45s", "12m05s", "3h07m".
std::string duration(double s) {
  const long long t = static_cast<long long>(s + 0.5);
  char buf[32];
  if (t < 60) std::snprintf(buf, sizeof(buf), "%llds", t);
  else if (t < 3600) std::snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%lldh%02lldm", t / 3600, t % 3600 / 60);
  return buf;
}

// True when path is read as JSON lines: --format, else a *.jsonl[.gz] name.
bool is_jsonl_input(const std::string& path, const std::string& format) {
  if (!format.empty()) return format == "jsonl";
  return path.ends_with(".jsonl") || path.ends_with(".jsonl.gz");
}

// Tokenized documents -> shards of at most shard_tokens tokens; progress lines.
// Runs on the pipeline's writer thread only (it owns every HDF5 call).
class ShardSink {
 public:
  ShardSink(const PrepareOptions& o, const Tokenizer& tok, int64_t input_bytes, Clock::time_point start)
      : o_(o), tok_(tok), input_bytes_(input_bytes), start_(start), last_progress_(start) {}

  void consume(const DocBatch& b) {
    size_t begin = 0;
    for (size_t end : b.ends) {
      add(std::span<const int32_t>(b.tokens.data() + begin, end - begin));
      begin = end;
    }
    stats_.bytes += b.text_bytes;
    if (seconds_since(last_progress_) >= o_.progress_seconds) {
      last_progress_ = Clock::now();
      progress(b.input_offset);
    }
  }

  // Closes the last shard; the stats so far (skipped and seconds left to the caller).
  PrepareStats finish() {
    if (writer_) finish_shard();
    return stats_;
  }

 private:
  void add(std::span<const int32_t> ids) {
    const int64_t len = static_cast<int64_t>(ids.size()) + 1;  // + EOS
    if (writer_ && writer_->num_tokens() > 0 && writer_->num_tokens() + len > o_.shard_tokens) finish_shard();
    if (!writer_) {
      char name[32];
      std::snprintf(name, sizeof(name), "shard_%05d.h5", stats_.shards);
      writer_ = std::make_unique<ShardWriter>((fs::path(o_.output) / name).string(), tok_.name(),
                                              tok_.vocab_size(), tok_.eos_id());
    }
    writer_->add_document(ids);
    ++stats_.documents;
    stats_.tokens += len;
  }

  void finish_shard() {
    writer_->close();
    writer_.reset();
    ++stats_.shards;
  }

  // input_offset: bytes of the input files (compressed, for gzip) read so far.
  void progress(int64_t input_offset) const {
    const double s = seconds_since(start_);
    const double frac = input_bytes_ > 0 ? std::min(1.0, static_cast<double>(input_offset) / input_bytes_) : 0.0;
    const std::string eta = frac > 0 ? duration(s * (1 - frac) / frac) : "unknown";
    char line[256];
    std::snprintf(line, sizeof(line),
                  "prepare: %lld documents (%.0f/s), %.1f MB (%.1f MB/s), %lld tokens, %d shards done, "
                  "%.1f%% of input, ETA %s",
                  static_cast<long long>(stats_.documents), stats_.documents / s, stats_.bytes / 1e6,
                  stats_.bytes / 1e6 / s, static_cast<long long>(stats_.tokens), stats_.shards, 100 * frac,
                  eta.c_str());
    log_info(line);
  }

  const PrepareOptions& o_;
  const Tokenizer& tok_;
  const int64_t input_bytes_;
  const Clock::time_point start_;
  Clock::time_point last_progress_;
  std::unique_ptr<ShardWriter> writer_;
  PrepareStats stats_;
};

// The reader side, on the calling thread: files -> documents -> batches, in input order.
class BatchReader {
 public:
  BatchReader(const PrepareOptions& o, TokenizePipeline& pipe) : o_(o), pipe_(pipe) {}

  // Reads every document of path; false when the pipeline has stopped on an error.
  bool read_file(const std::string& path) {
    const DocFormat format{is_jsonl_input(path, o_.format), o_.separator, o_.text_field};
    int64_t docs = 0;  // documents of this file kept so far
    try {
      DocReader reader(path, format);
      std::string doc, why;
      while (true) {
        if (const int sig = stop_signal()) fail("interrupted by signal ", sig);
        const DocReader::Next next = reader.next(doc, why);
        if (next == DocReader::Next::kEnd) break;
        if (next == DocReader::Next::kBadRecord) {
          if (!o_.skip_bad) fail(why, " (--skip-bad skips such lines)");
          skip(why);
          continue;
        }
        if (doc.empty()) continue;  // it would be a lone EOS
        ++docs;
        batch_->text_bytes += static_cast<int64_t>(doc.size());
        batch_->texts.push_back(std::move(doc));
        doc = std::string();
        if (batch_->text_bytes >= kBatchBytes || batch_->texts.size() >= kBatchDocs)
          if (!flush(file_start_ + reader.raw_offset())) return false;
      }
    } catch (const Error& e) {
      if (!o_.skip_bad || stop_signal()) throw;
      skip(std::string(e.what()) + (docs > 0 ? " (the rest of the file)" : " (the whole file)"));
    }
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    file_start_ += ec ? 0 : static_cast<int64_t>(size);
    return true;
  }

  // Pushes the documents still batched; false when the pipeline has stopped.
  bool flush() { return flush(file_start_); }

  // Prints how many skips went unprinted; the number of skips.
  int64_t finish_skips() const {
    if (skipped_ > kMaxSkipWarnings)
      log_warn("difftron prepare: warning: ", skipped_ - kMaxSkipWarnings, " more skipped (not shown)");
    return skipped_;
  }

 private:
  int stop_signal() const { return o_.stop ? o_.stop->load(std::memory_order_relaxed) : 0; }

  bool flush(int64_t input_offset) {
    if (batch_->texts.empty()) return true;
    batch_->input_offset = input_offset;
    const bool ok = pipe_.push(std::move(batch_));
    batch_ = std::make_unique<DocBatch>();
    return ok;
  }

  void skip(const std::string& why) {
    if (++skipped_ <= kMaxSkipWarnings) log_warn("difftron prepare: warning: skipped ", why);
  }

  const PrepareOptions& o_;
  TokenizePipeline& pipe_;
  std::unique_ptr<DocBatch> batch_ = std::make_unique<DocBatch>();
  int64_t file_start_ = 0;  // bytes of the files before the current one
  int64_t skipped_ = 0;
};

}  // namespace

PrepareStats prepare_shards(const PrepareOptions& o, const std::vector<std::string>& files, const Tokenizer& tok) {
  const Clock::time_point start = Clock::now();
  int64_t input_bytes = 0;  // the ETA's measure: file sizes on disk, compressed for gzip
  for (const auto& f : files) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(f, ec);
    if (!ec) input_bytes += static_cast<int64_t>(size);
  }

  ShardSink sink(o, tok, input_bytes, start);
  TokenizePipeline pipe(tok, o.threads, [&sink](const DocBatch& b) { sink.consume(b); });
  BatchReader reader(o, pipe);
  bool ok = true;
  for (size_t i = 0; ok && i < files.size(); ++i) ok = reader.read_file(files[i]);
  if (ok) reader.flush();
  pipe.finish();  // rethrows a worker's or the writer's error
  PrepareStats stats = sink.finish();
  stats.skipped = reader.finish_skips();
  if (stats.documents == 0)
    fail("no documents found in the inputs (",
         stats.skipped > 0 ? "every one was empty or skipped" : "every file was empty", ")");
  write_dataset_manifest(o.output);
  stats.seconds = seconds_since(start);
  return stats;
}

}  // namespace dt
