// Tokenizer encode throughput.
//
//   bench_tokenizer [--tokenizer SPEC (default data/tokenizers/cl100k_base.tiktoken)]
//                   [--input DIR (default data/corpus/raw)] [--threads N] [--passes N]
//
// Reads every file in DIR as one document, then encodes them all: on one core
// (the first pass, with cold per-thread caches, then the best later pass), and
// on N threads sharing one tokenizer (default: all cores). For a tiktoken
// encoding it also times the pre-tokenizer regex alone. MB are 10^6 bytes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "data/tiktoken.hpp"
#include "data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> read_documents(const std::string& dir) {
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> docs;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    docs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return docs;
}

// Encodes docs[first], docs[first + stride], ...; returns the number of tokens.
size_t encode_all(const dt::Tokenizer& tok, const std::vector<std::string>& docs, size_t first, size_t stride) {
  size_t tokens = 0;
  for (size_t i = first; i < docs.size(); i += stride) tokens += tok.encode(docs[i]).size();
  return tokens;
}

void report(const char* what, double bytes, double tokens, double seconds, int threads) {
  std::printf("%-34s %8.2f MB/s  %6.2f MB/s/core  %10.0f tokens/s  (%.3f s)\n", what, bytes / seconds / 1e6,
              bytes / seconds / 1e6 / threads, tokens / seconds, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  std::string spec = "data/tokenizers/cl100k_base.tiktoken", dir = "data/corpus/raw";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int passes = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc) {
      spec = argv[++i];
    } else if (a == "--input" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::max(1, std::stoi(argv[++i]));
    } else if (a == "--passes" && i + 1 < argc) {
      passes = std::max(2, std::stoi(argv[++i]));
    } else {
      std::puts("usage: bench_tokenizer [--tokenizer SPEC] [--input DIR] [--threads N] [--passes N]");
      return a == "--help" ? 0 : 2;
    }
  }
  try {
    if (!fs::is_directory(dir))
      dt::fail(dir, " is not a directory (launch/quickstart_corpus.sh makes data/corpus/raw)");
    const std::vector<std::string> docs = read_documents(dir);
    double bytes = 0;
    for (const auto& d : docs) bytes += static_cast<double>(d.size());
    double t0 = now();
    const std::unique_ptr<dt::Tokenizer> tok = dt::make_tokenizer(spec);
    std::printf("tokenizer %s (vocab %lld) loaded in %.3f s; %zu documents, %.2f MB from %s\n", tok->name().c_str(),
                static_cast<long long>(tok->vocab_size()), now() - t0, docs.size(), bytes / 1e6, dir.c_str());

    // One core: first pass (cold caches), then the best of the rest.
    t0 = now();
    const double tokens = static_cast<double>(encode_all(*tok, docs, 0, 1));
    report("encode, 1 thread, first pass", bytes, tokens, now() - t0, 1);
    double best = 1e30;
    for (int p = 1; p < passes; ++p) {
      t0 = now();
      encode_all(*tok, docs, 0, 1);
      best = std::min(best, now() - t0);
    }
    report("encode, 1 thread, best later pass", bytes, tokens, best, 1);
    std::printf("%.3f bytes/token\n", bytes / tokens);

    if (const auto* tt = dynamic_cast<const dt::TiktokenTokenizer*>(tok.get())) {
      size_t pieces = 0;
      t0 = now();
      for (const auto& d : docs) tt->pretokenizer().split(d, [&](std::string_view) { ++pieces; });
      const double dt_regex = now() - t0;
      std::printf("%-34s %8.2f MB/s  (%zu pieces, PCRE2 JIT %s)\n", "pre-tokenizer regex only, 1 thread",
                  bytes / dt_regex / 1e6, pieces, tt->pretokenizer().jit() ? "on" : "off");
    }

    // N threads, one shared tokenizer, documents dealt round-robin.
    t0 = now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { encode_all(*tok, docs, t, threads); });
    for (auto& th : pool) th.join();
    const std::string label = "encode, " + std::to_string(threads) + " threads, first pass";
    report(label.c_str(), bytes, tokens, now() - t0, threads);
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
