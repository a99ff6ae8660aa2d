// The body of difftron prepare: input files -> tokenized HDF5 shards
// (DESIGN §5), with progress lines and bad-input handling. The command line
// lives in cli/cmd_prepare.cpp; threading in data/prepare_pipeline.hpp.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.hpp"

namespace dt {

struct PrepareOptions {
  std::vector<std::string> inputs;  // as given; prepare_shards takes the expanded file list
  std::string output;               // directory of shard_NNNNN.h5 files
  std::string tokenizer = "byte";
  std::string format;               // "text", "jsonl", or "" to go by the file name
  std::string text_field = "text";  // JSON-lines field holding the document
  std::string separator;            // splits text files into documents; "" = one per file
  int64_t shard_tokens = 50'000'000;
  int threads = 1;                  // tokenizing threads
  double progress_seconds = 2.0;    // between progress lines on stderr
  bool force = false;
  bool skip_bad = false;            // skip bad lines and unreadable files instead of failing
  // When set and it turns non-zero (a signal number, from a handler), reading
  // stops at the next document and prepare_shards fails ("interrupted").
  const std::atomic<int>* stop = nullptr;
};

struct PrepareStats {
  int64_t documents = 0, tokens = 0, bytes = 0;  // tokens include one EOS per document
  int64_t skipped = 0;                           // bad lines plus unreadable files
  int shards = 0;
  double seconds = 0;
};

// Tokenizes the documents of `files` (JSON lines under --format jsonl or when
// named *.jsonl[.gz], else text), in that order, into shards in o.output
// (which must exist and hold no shards), then writes its dataset manifest
// (data/dataset_manifest.hpp) last: o.output is a complete dataset only when
// this returns. Empty documents are dropped. The shards' contents are the
// same for any o.threads. Bad input throws a one-line dt::Error
// ("file:line: what is wrong") unless o.skip_bad, in which case it is counted,
// warned about on stderr (the first 20) and skipped. Fails when no document is
// left, and when *o.stop turns non-zero.
PrepareStats prepare_shards(const PrepareOptions& o, const std::vector<std::string>& files, const Tokenizer& tok);

}  // namespace dt
