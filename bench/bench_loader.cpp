// Streaming data loader throughput: how many training tokens per second the
// prefetch thread delivers when next() is called back to back (no compute),
// i.e. the most the loader could feed a trainer.
//
//   bench_loader [DATASET (default data/corpus/quickstart)] [--seq-len T (1024)]
//                [--micro-batch B (8)] [--batches N (2000)] [--prefetch P (8)]
//
// Prepare the default corpus with `bash launch/quickstart_corpus.sh`. Tokens
// counted are B·T per micro-batch (the tokens a model trains on); the first
// micro-batch (the thread's start) is not timed.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/data_loader.hpp"

int main(int argc, char** argv) {
  std::string path = "data/corpus/quickstart";
  dt::LoaderOptions opt;
  opt.seq_len = 1024;
  opt.micro_batch = 8;
  int64_t batches = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) dt::fail("bench_loader: ", a, " needs a value");
      return std::stoll(argv[++i]);
    };
    if (a == "--help") {
      std::puts("usage: bench_loader [DATASET] [--seq-len T] [--micro-batch B] [--batches N] [--prefetch P]");
      return 0;
    } else if (a == "--seq-len") {
      opt.seq_len = static_cast<int>(value());
    } else if (a == "--micro-batch") {
      opt.micro_batch = value();
    } else if (a == "--batches") {
      batches = value();
    } else if (a == "--prefetch") {
      opt.prefetch = static_cast<int>(value());
    } else {
      path = a;
    }
  }
  try {
    using clock = std::chrono::steady_clock;
    auto seconds = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    const auto t_open = clock::now();
    dt::DataLoader loader({{path, 1.0}}, opt);
    std::vector<int32_t> batch(opt.micro_batch * (opt.seq_len + 1));
    loader.next(batch.data());
    const auto t0 = clock::now();
    const double waited0 = loader.wait_seconds();
    for (int64_t m = 0; m < batches; ++m) loader.next(batch.data());
    const auto t1 = clock::now();
    const double s = seconds(t0, t1);
    const double tokens = double(batches) * opt.micro_batch * opt.seq_len;
    const auto& d = loader.datasets()[0];
    std::printf("bench_loader: %s: %lld tokens in %lld shard(s), %lld samples of %d tokens\n", path.c_str(),
                (long long)d.num_tokens, (long long)d.num_shards, (long long)d.num_samples, opt.seq_len + 1);
    std::printf("bench_loader: open + first micro-batch %.3f s\n", seconds(t_open, t0));
    std::printf("bench_loader: T=%d micro_batch=%lld prefetch=%d: %lld micro-batches (%.2f epochs) in %.3f s\n",
                opt.seq_len, (long long)opt.micro_batch, opt.prefetch, (long long)batches,
                double(batches) * opt.micro_batch / d.num_samples, s);
    std::printf("bench_loader: %.3g tokens/s (%.0f micro-batches/s); next() waited %.3f s\n", tokens / s,
                batches / s, loader.wait_seconds() - waited0);
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "bench_loader: %s\n", e.what());
    return 1;
  }
  return 0;
}
