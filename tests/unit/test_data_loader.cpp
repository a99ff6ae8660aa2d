// Data pipeline, part 2: the sample order (a seeded bijection per epoch) and
// the in-memory TokenLoader built on HDF5 shards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/sample_order.hpp"
#include "data/shard_writer.hpp"
#include "data/token_loader.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dt_test_loader_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Writes one shard of `docs` and appends its token stream (with EOS) to stream.
void write_shard(const std::string& path, const std::vector<std::vector<int32_t>>& docs, int64_t vocab,
                 int32_t eos, std::vector<int32_t>& stream) {
  dt::ShardWriter w(path, "test", vocab, eos);
  for (const auto& d : docs) {
    w.add_document(d);
    stream.insert(stream.end(), d.begin(), d.end());
    stream.push_back(eos);
  }
  w.close();
}

std::vector<int32_t> counting_doc(int len, int offset, int vocab) {
  std::vector<int32_t> d(len);
  for (int i = 0; i < len; ++i) d[i] = (offset + i) % vocab;
  return d;
}

}  // namespace

TEST(LoaderOrder, IsABijectionOnEachEpoch) {
  for (uint64_t n : {1, 2, 3, 5, 7, 64, 100, 1000, 4097}) {
    for (uint64_t epoch : {0, 1, 9}) {
      std::vector<bool> seen(n, false);
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t p = dt::sample_position(i, n, 1234, epoch);
        ASSERT_LT(p, n);
        ASSERT_FALSE(seen[p]) << "n=" << n << " epoch=" << epoch << " position " << p << " drawn twice";
        seen[p] = true;
      }
    }
  }
}

TEST(LoaderOrder, IsAPureFunctionOfSeedEpochAndIndex) {
  const uint64_t n = 1000;
  auto order = [&](uint64_t seed, uint64_t epoch) {
    std::vector<uint64_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = dt::sample_position(i, n, seed, epoch);
    return v;
  };
  EXPECT_EQ(order(42, 0), order(42, 0));
  EXPECT_NE(order(42, 0), order(42, 1));
  EXPECT_NE(order(42, 0), order(43, 0));
  // Shuffled, not the identity: far fewer fixed points than positions.
  std::vector<uint64_t> v = order(42, 0);
  int fixed = 0;
  for (uint64_t i = 0; i < n; ++i) fixed += v[i] == i;
  EXPECT_LT(fixed, 20);
}

TEST(LoaderSample, IsTheSeqLenPlusOneWindowAtItsPermutedPosition) {
  TempDir dir;
  std::vector<int32_t> stream;
  write_shard(dir.file("shard_00000.h5"), {counting_doc(50, 0, 500), counting_doc(33, 7, 500)}, 501, 500,
              stream);
  write_shard(dir.file("shard_00001.h5"), {counting_doc(80, 100, 500)}, 501, 500, stream);
  const int T = 8;
  dt::TokenLoader loader({dir.path}, T, 7);
  ASSERT_EQ(loader.num_tokens(), static_cast<int64_t>(stream.size()));  // both shards, in name order
  const int64_t ns = loader.num_samples();
  EXPECT_EQ(ns, (static_cast<int64_t>(stream.size()) - 1) / T);
  EXPECT_EQ(loader.vocab_size(), 501);
  EXPECT_EQ(loader.eos_id(), 500);
  EXPECT_EQ(loader.num_shards(), 2);

  std::vector<int32_t> out(T + 1);
  std::set<int64_t> starts;
  for (int64_t g = 0; g < 3 * ns; ++g) {
    loader.sample(g, out.data());
    const int64_t start = loader.sample_start(g);
    ASSERT_EQ(start % T, 0);
    ASSERT_LE(start + T + 1, loader.num_tokens());
    ASSERT_TRUE(std::equal(out.begin(), out.end(), stream.begin() + start)) << "sample " << g;
    EXPECT_EQ(start / T, static_cast<int64_t>(dt::sample_position(g % ns, ns, 7, g / ns)));
    if (g < ns) starts.insert(start);
  }
  EXPECT_EQ(static_cast<int64_t>(starts.size()), ns);  // the first epoch visits every window once
}

TEST(LoaderSample, SameSeedSameSamplesOtherSeedOtherOrder) {
  TempDir dir;
  std::vector<int32_t> stream;
  write_shard(dir.file("s.h5"), {counting_doc(2000, 0, 256)}, 257, 256, stream);
  dt::TokenLoader a({dir.file("s.h5")}, 16, 1), b({dir.path + "/*.h5"}, 16, 1), c({dir.path}, 16, 2);
  int differ = 0;
  for (int64_t g = 0; g < 200; ++g) {
    EXPECT_EQ(a.sample_start(g), b.sample_start(g));
    differ += a.sample_start(g) != c.sample_start(g);
  }
  EXPECT_GT(differ, 150);
}

TEST(LoaderStats, UnigramEntropyIsThatOfAllLoadedTokens) {
  TempDir dir;
  std::vector<int32_t> stream;
  // Tokens 0, 1, 2, EOS, 0, 1, 2, EOS: four symbols, equally likely -> ln 4.
  write_shard(dir.file("s.h5"), {{0, 1, 2}, {0, 1, 2}}, 257, 256, stream);
  dt::TokenLoader loader({dir.path}, 2, 0);
  EXPECT_NEAR(loader.unigram_entropy_nats(), std::log(4.0), 1e-12);  // exact up to rounding
}

TEST(LoaderErrors, EachIsOneLineNamingThePath) {
  TempDir dir;
  std::vector<int32_t> stream;
  write_shard(dir.file("a.h5"), {{1, 2, 3}}, 257, 256, stream);
  write_shard(dir.file("b.h5"), {{1, 2, 3}}, 300, 256, stream);
  fs::create_directory(dir.file("empty"));

  std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no data paths given"},
      {{dir.file("nope")}, dir.file("nope") + ": no such file or directory"},
      {{dir.file("empty")}, dir.file("empty") + ": directory holds no '*.h5' files"},
      {{dir.path + "/*.bin"}, dir.path + "/*.bin: glob matches no"},
      {{dir.file("a.h5")}, dir.file("a.h5") + ": 4 tokens is too few for one sample of seq_len+1 = 9"},
      {{dir.path}, "shard " + dir.file("b.h5") + ": tokenizer test (vocab_size 300"},
  };
  for (const auto& [paths, want] : cases) {
    std::string err = error_of([&] { dt::TokenLoader l(paths, 8, 0); });
    EXPECT_NE(err.find(want), std::string::npos) << "got: " << err << "\nwanted: " << want;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}
