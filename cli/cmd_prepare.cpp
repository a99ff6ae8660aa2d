// difftron prepare: text or JSON-lines files -> HDF5 token shards (DESIGN §5).
// This file is the command line; data/prepare_shards.cpp does the work: the
// calling thread reads documents in input order, --threads workers tokenize
// them, and one writer thread appends them to shards in input order. The
// dataset is written beside DIR and swapped in when complete
// (data/prepare_output.hpp); SIGINT or SIGTERM stops the run, removes what it
// wrote and exits 128 + the signal, leaving DIR as it was.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/file_list.hpp"
#include "data/prepare_output.hpp"
#include "data/prepare_shards.hpp"
#include "data/tokenizer.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

constexpr int kMaxThreads = 1024;

// --separator '\n\n' means two newlines: \n, \t and \\ are decoded, any other
// backslash is kept as typed.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (s[i] == '\\' && (next == 'n' || next == 't' || next == '\\')) {
      out.push_back(next == 'n' ? '\n' : next == 't' ? '\t' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The command line; false when --help was printed.
bool parse(int argc, char** argv, PrepareOptions& o) {
  o.threads = static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, kMaxThreads));
  CommandLine cl("prepare", "usage: difftron prepare --input PATH [--input PATH ...] --output DIR [options]\n",
                 "Tokenizes documents into HDF5 shards DIR/shard_00000.h5, shard_00001.h5, ...\n"
                 "Documents keep their input order (files in the order given, directories in\n"
                 "name order), so the shards are the same for any --threads.\n");
  cl.texts("--input", o.inputs, "PATH",
           "a file, a directory (recursed, files in name order) or a glob;\n"
           "repeatable; .gz files are decompressed");
  cl.text("--output", o.output, "DIR",
          "the dataset directory: shards and their manifest dataset.yaml,\n"
          "written last (created if missing; written in DIR.tmp-PID beside\n"
          "it and renamed when complete)");
  cl.text("--tokenizer", o.tokenizer, "SPEC",
          "byte (the default), a Hugging Face tokenizer.json of a byte-level\n"
          "BPE model (any *.json), or a tiktoken rank file such as\n"
          "data/tokenizers/cl100k_base.tiktoken");
  cl.integer<int64_t>("--shard-tokens", o.shard_tokens, 1, INT64_MAX, "N",
                      "tokens per shard at most (default: 50000000); a document is\n"
                      "never split, so one longer than N gets a shard of its own");
  cl.value("--format", "F", "text or jsonl (default: jsonl for *.jsonl and *.jsonl.gz, else text)",
           [&o](const std::string& v) {
             if (v != "text" && v != "jsonl") throw UsageError("--format " + v + ": expected text or jsonl");
             o.format = v;
           });
  cl.text("--text-field", o.text_field, "NAME", "JSON-lines field holding the document (default: text)");
  cl.value("--separator", "STR",
           "split text files into documents at STR (\\n, \\t and \\\\ are\n"
           "understood); default: one document per file",
           [&o](const std::string& v) { o.separator = unescape(v); });
  cl.integer("--threads", o.threads, 1, kMaxThreads, "N", "tokenizing threads (default: the number of cores)");
  cl.flag("--skip-bad", o.skip_bad,
          "skip bad JSON lines and unreadable or corrupt files, with a\n"
          "warning each (the first 20) and a count in the summary,\n"
          "instead of stopping at the first one");
  cl.value("--progress-seconds", "S", "seconds between progress lines on stdout (default: 2)",
           [&o](const std::string& v) {
             o.progress_seconds = parse_option<double>("--progress-seconds", v, 0, std::numeric_limits<double>::max(),
                                                       "a number >= 0");
           });
  cl.flag("--force", o.force,
          "replace the dataset already in DIR once the new one is complete\n"
          "(a failed or interrupted run leaves it as it was)");
  cl.footer("Progress lines (stdout) give documents/s, MB/s of text and an ETA from the input\n"
            "files' sizes on disk; the summary (stdout) gives documents, tokens, bytes, shards,\n"
            "skipped, seconds and MB/s; warnings and errors go to stderr. SIGINT or SIGTERM\n"
            "stops the run and removes what it wrote (exit 128 + the signal); a second one\n"
            "kills it at once.\n");
  if (!cl.parse(argc, argv)) return false;
  if (o.inputs.empty()) throw UsageError("missing --input PATH (" + cl.see_help() + ")");
  if (o.output.empty()) throw UsageError("missing --output DIR (" + cl.see_help() + ")");
  return true;
}

// True when directory `path` lies in `out` or in the directories a prepare to
// out writes or moves aside (out.tmp-PID, out.old-PID; data/prepare_output.hpp).
bool inside_output(const fs::path& path, const fs::path& out) {
  const fs::path base = out.parent_path();
  const auto [b, p] = std::mismatch(base.begin(), base.end(), path.begin(), path.end());
  if (b != base.end() || p == path.end()) return false;
  const std::string first = p->string(), name = out.filename().string();
  return first == name || first.starts_with(name + ".tmp-") || first.starts_with(name + ".old-");
}

// Every input file, minus anything inside the output directory (old shards
// when DIR sits under an input) or left beside it by a killed prepare.
std::vector<std::string> input_files(const PrepareOptions& o) {
  fs::path out_dir = fs::weakly_canonical(o.output);
  if (!out_dir.has_filename()) out_dir = out_dir.parent_path();  // "out/" -> "out"
  std::vector<std::string> files;
  for (const auto& spec : o.inputs)
    for (auto& f : list_files(spec, /*recurse=*/true))
      if (!inside_output(fs::weakly_canonical(f).parent_path(), out_dir)) files.push_back(std::move(f));
  if (files.empty()) fail("no input files outside the output directory ", o.output);
  return files;
}

// SIGINT and SIGTERM set the stop flag prepare_shards polls; the handler
// resets itself, so a second signal kills at once. A signal ignored when the
// command starts (nohup, a background job of a script) stays ignored.
std::atomic<int> g_stop_signal{0};

void on_stop_signal(int sig) { g_stop_signal.store(sig); }

class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    for (int i = 0; i < 2; ++i) {
      sigaction(kSignals[i], nullptr, &old_[i]);
      if (old_[i].sa_handler != SIG_IGN) sigaction(kSignals[i], &sa, nullptr);
    }
  }
  ~StopSignals() {
    for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  struct sigaction old_[2];
};

}  // namespace

int cmd_prepare(int argc, char** argv) {
  PrepareOptions o;
  if (!parse(argc, argv, o)) return 0;
  std::unique_ptr<Tokenizer> tok = make_tokenizer(o.tokenizer);
  const std::vector<std::string> files = input_files(o);

  StopSignals signals;
  PrepareOutput out(o.output, o.force);
  PrepareOptions into = o;
  into.output = out.tmp();
  into.stop = &g_stop_signal;

  log_info("prepare: ", files.size(), " input file(s), tokenizer ", tok->name(), ", ", o.threads,
           " tokenizing thread(s), up to ", o.shard_tokens, " tokens per shard -> ", o.output);
  PrepareStats s;
  try {
    s = prepare_shards(into, files, *tok);
  } catch (const Error&) {
    if (!g_stop_signal.load()) throw;  // bad input: main() prints it; `out` removes its directory
  }
  if (const int sig = g_stop_signal.load()) {
    out.discard();
    std::fprintf(stderr, "difftron prepare: interrupted by %s: removed the unfinished %s; %s is as it was\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", out.tmp().c_str(), o.output.c_str());
    return 128 + sig;
  }
  out.commit();
  std::printf("prepare: %lld documents, %lld tokens, %lld bytes, %d shards, %lld skipped, %.2f s, %.2f MB/s -> %s\n",
              static_cast<long long>(s.documents), static_cast<long long>(s.tokens),
              static_cast<long long>(s.bytes), s.shards, static_cast<long long>(s.skipped), s.seconds,
              s.bytes / 1e6 / s.seconds, o.output.c_str());
  return 0;
}

}  // namespace dt
