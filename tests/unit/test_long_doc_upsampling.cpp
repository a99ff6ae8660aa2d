// Long-document up-sampling (data.long_doc_tokens = L, data.long_doc_factor =
// f; rule in data/dataset_index.hpp): a window that lies inside one document
// of at least L tokens is read f times per epoch, every other window once; the
// order stays a pure function of (seed, sample index), so resume is exact,
// and f = 1 (or L = 0) leaves the order exactly as it was without the rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/dataset_index.hpp"
#include "data/sample_order.hpp"
#include "test_data_loader_stream_util.hpp"

using dt_test::counting_doc;
using dt_test::error_of;
using dt_test::options;
using dt_test::ScratchDir;
using dt_test::Tokens;
using dt_test::write_shard;

namespace {

// Offsets of documents of these lengths, each followed by one EOS.
std::vector<uint64_t> offsets_of(const std::vector<int>& lengths) {
  std::vector<uint64_t> off{0};
  for (int len : lengths) off.push_back(off.back() + len + 1);
  return off;
}

// Brute force, independent of the implementation: window k (tokens
// [kT, kT+T]) is long when its first and last token belong to the same
// document span (tokens + EOS) and that document has >= L tokens.
std::set<int64_t> long_windows_brute(const std::vector<int>& lengths, int T, int64_t L) {
  const std::vector<uint64_t> off = offsets_of(lengths);
  auto doc_of = [&](uint64_t t) { return std::upper_bound(off.begin(), off.end(), t) - off.begin() - 1; };
  std::set<int64_t> out;
  for (int64_t k = 0; (k + 1) * T + 1 <= int64_t(off.back()); ++k) {
    const auto d = doc_of(k * T);
    if (d == doc_of(k * T + T) && lengths[d] >= L) out.insert(k);
  }
  return out;
}

// Document lengths for the loader tests: long (>= 12) and short ones, with
// long neighbours (so some windows straddle two long documents).
const std::vector<int> kDocsA = {30, 5, 12, 3, 25, 26, 11};
const std::vector<int> kDocsB = {9, 40, 2};
constexpr int kT = 4;
constexpr int64_t kL = 12;
constexpr int kFactor = 3;

// Distinct non-EOS ids throughout, so a window's tokens name its position.
Tokens write_docs(const std::string& path, const std::vector<int>& lengths, int first_id) {
  std::vector<Tokens> docs;
  for (int len : lengths) {
    docs.push_back(counting_doc(len, first_id));
    first_id += len;
  }
  return write_shard(path, docs);
}

dt::LoaderOptions long_options(int64_t micro_batch, int64_t L = kL, int factor = kFactor, uint64_t seed = 7) {
  dt::LoaderOptions o = options(kT, micro_batch, 0, 1, seed);
  o.long_doc_tokens = L;
  o.long_doc_factor = factor;
  return o;
}

std::vector<Tokens> read_samples(dt::DataLoader& loader, int64_t micro_batch, int64_t count) {
  const int64_t row = loader.seq_len() + 1;
  std::vector<Tokens> out;
  Tokens batch(micro_batch * row);
  for (int64_t m = 0; m < count / micro_batch; ++m) {
    loader.next(batch.data());
    for (int64_t b = 0; b < micro_batch; ++b)
      out.emplace_back(batch.begin() + b * row, batch.begin() + (b + 1) * row);
  }
  return out;
}

// An index over shards given by document lengths (no files: the rule is pure arithmetic).
dt::DatasetIndex index_of(const std::vector<std::vector<int>>& shards, int T, int64_t L, int factor,
                          uint64_t seed) {
  std::vector<dt::ShardInput> in;
  for (const auto& lengths : shards) {
    const std::vector<uint64_t> off = offsets_of(lengths);
    in.push_back({"shard", int64_t(off.back()), dt::DatasetIndex::long_windows_of(off, T, L)});
  }
  return dt::DatasetIndex("test", std::move(in), T, seed, factor);
}

}  // namespace

TEST(LongDocUpsampling, LongWindowsAreThoseInsideOneDocumentOfAtLeastLTokens) {
  // Spans [0, 9) and [9, 21) with T = 4: windows [0,5) [4,9) [8,13) [12,17) [16,21).
  // [4,9) ends on document 0's EOS and is inside it; [8,13) holds that EOS and
  // document 1's first tokens: it straddles two documents and is short.
  const std::vector<uint64_t> off = offsets_of({8, 11});
  EXPECT_EQ(dt::DatasetIndex::long_windows_of(off, 4, 8), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(dt::DatasetIndex::long_windows_of(off, 4, 9), (std::vector<int64_t>{3, 4}));  // 8 < 9 tokens
  EXPECT_EQ(dt::DatasetIndex::long_windows_of(off, 4, 12), (std::vector<int64_t>{}));
  EXPECT_EQ(dt::DatasetIndex::long_windows_of(off, 4, 0), (std::vector<int64_t>{}));  // 0 = off
  // A document too short for one window has none, whatever L.
  EXPECT_EQ(dt::DatasetIndex::long_windows_of(offsets_of({3, 2}), 4, 1), (std::vector<int64_t>{}));
  for (int T : {1, 3, 4, 7})
    for (int64_t L : {1, 5, 12}) {
      const std::vector<int64_t> got = dt::DatasetIndex::long_windows_of(offsets_of(kDocsA), T, L);
      const std::set<int64_t> want = long_windows_brute(kDocsA, T, L);
      EXPECT_EQ(std::set<int64_t>(got.begin(), got.end()), want) << "T=" << T << " L=" << L;
      EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    }
}

TEST(LongDocUpsampling, EachEpochReadsShortWindowsOnceAndLongWindowsFactorTimes) {
  ScratchDir dir;
  const Tokens a = write_docs(dir.file("a.h5"), kDocsA, 1), b = write_docs(dir.file("b.h5"), kDocsB, 1000);
  // Expected reads per window, from the brute-force rule on each shard.
  std::map<Tokens, int> want;
  int64_t n = 0, n_long = 0;
  for (const auto& [stream, docs] : {std::pair{a, kDocsA}, std::pair{b, kDocsB}}) {
    const std::set<int64_t> longs = long_windows_brute(docs, kT, kL);
    for (int64_t k = 0; (k + 1) * kT + 1 <= int64_t(stream.size()); ++k, ++n) {
      Tokens w(stream.begin() + k * kT, stream.begin() + k * kT + kT + 1);
      ASSERT_EQ(want.count(w), 0u) << "test shards must have distinct windows";
      want[w] = longs.count(k) ? kFactor : 1;
    }
    n_long += static_cast<int64_t>(longs.size());
  }
  ASSERT_GT(n_long, 0);
  ASSERT_LT(n_long, n);
  const int64_t epoch = n + (kFactor - 1) * n_long;

  dt::DataLoader loader({{dir.path, 1.0}}, long_options(1));
  const auto& info = loader.datasets()[0];
  EXPECT_EQ(info.num_samples, n);
  EXPECT_EQ(info.num_long_samples, n_long);
  EXPECT_EQ(info.samples_per_epoch, epoch);
  for (int e = 0; e < 2; ++e) {  // every epoch, not only the first
    std::map<Tokens, int> got;
    for (const Tokens& w : read_samples(loader, 1, epoch)) ++got[w];
    EXPECT_EQ(got, want) << "epoch " << e;
  }
}

TEST(LongDocUpsampling, CountsHoldOnEveryEpochOfAMultiShardIndex) {
  // Includes a shard too short for any window, which must not shift numbering.
  const std::vector<std::vector<int>> shards = {kDocsA, {2}, kDocsB, {14, 14}};
  const dt::DatasetIndex ix = index_of(shards, kT, kL, 4, 99);
  const int64_t n = ix.num_samples(), N = ix.samples_per_epoch();
  std::set<int64_t> longs;  // dataset window numbers
  int64_t base = 0;
  for (const auto& docs : shards) {
    for (int64_t k : long_windows_brute(docs, kT, kL)) longs.insert(base + k);
    const int64_t tokens = int64_t(offsets_of(docs).back());
    base += tokens >= kT + 1 ? (tokens - 1) / kT : 0;
  }
  ASSERT_EQ(base, n);
  EXPECT_EQ(ix.num_long_samples(), int64_t(longs.size()));
  EXPECT_EQ(N, n + 3 * int64_t(longs.size()));
  for (int64_t e = 0; e < 3; ++e) {
    std::vector<int> reads(n, 0);
    for (int64_t j = e * N; j < (e + 1) * N; ++j) ++reads[ix.window_of(j)];
    for (int64_t w = 0; w < n; ++w) EXPECT_EQ(reads[w], longs.count(w) ? 4 : 1) << "window " << w << " epoch " << e;
  }
}

TEST(LongDocUpsampling, OrderIsAPureFunctionOfSeedEpochAndIndex) {
  const dt::DatasetIndex x = index_of({kDocsA, kDocsB}, kT, kL, kFactor, 5);
  const dt::DatasetIndex same = index_of({kDocsA, kDocsB}, kT, kL, kFactor, 5);
  const dt::DatasetIndex other = index_of({kDocsA, kDocsB}, kT, kL, kFactor, 6);
  const int64_t N = x.samples_per_epoch();
  auto epoch = [&](const dt::DatasetIndex& ix, int64_t e) {
    std::vector<int64_t> v;
    for (int64_t j = e * N; j < (e + 1) * N; ++j) v.push_back(ix.window_of(j));
    return v;
  };
  EXPECT_EQ(epoch(x, 0), epoch(same, 0));
  EXPECT_EQ(epoch(x, 1), epoch(same, 1));
  EXPECT_NE(epoch(x, 0), epoch(x, 1));
  EXPECT_NE(epoch(x, 0), epoch(other, 0));
  // Asking out of order (as a resumed or dp-sharded reader does) changes nothing.
  const std::vector<int64_t> e1 = epoch(x, 1);
  for (int64_t j = 2 * N - 1; j >= N; --j) EXPECT_EQ(x.window_of(j), e1[j - N]);
}

TEST(LongDocUpsampling, FactorOneOrNoThresholdReproducesTheUnchangedOrder) {
  const dt::DatasetIndex plain = index_of({kDocsA, kDocsB}, kT, 0, 1, 11);
  const dt::DatasetIndex factor1 = index_of({kDocsA, kDocsB}, kT, kL, 1, 11);
  const dt::DatasetIndex off = index_of({kDocsA, kDocsB}, kT, 0, 5, 11);
  const int64_t n = plain.num_samples();
  EXPECT_EQ(factor1.samples_per_epoch(), n);
  EXPECT_GT(factor1.num_long_samples(), 0);  // still counted for the report
  EXPECT_EQ(off.samples_per_epoch(), n);
  for (int64_t j = 0; j < 3 * n; ++j) {
    // The order before the rule existed: position j mod n of epoch j div n.
    const int64_t before = int64_t(dt::sample_position(uint64_t(j % n), uint64_t(n), 11, uint64_t(j / n)));
    ASSERT_EQ(plain.window_of(j), before);
    ASSERT_EQ(factor1.window_of(j), before);
    ASSERT_EQ(off.window_of(j), before);
  }

  // End to end: the loader's stream with f = 1 or L = 0 equals the default one.
  ScratchDir dir;
  write_docs(dir.file("a.h5"), kDocsA, 1);
  write_docs(dir.file("b.h5"), kDocsB, 1000);
  dt::DataLoader base({{dir.path, 1.0}}, options(kT, 2)), one({{dir.path, 1.0}}, long_options(2, kL, 1)),
      none({{dir.path, 1.0}}, long_options(2, 0, 4));
  const std::vector<Tokens> want = read_samples(base, 2, 2 * n);
  EXPECT_EQ(read_samples(one, 2, 2 * n), want);
  EXPECT_EQ(read_samples(none, 2, 2 * n), want);
}

TEST(LongDocUpsampling, RestoreMidEpochEqualsTheUninterruptedStream) {
  ScratchDir dir;
  std::filesystem::create_directory(dir.file("long"));
  write_docs(dir.file("long/a.h5"), kDocsA, 1);
  write_docs(dir.file("long/b.h5"), kDocsB, 1000);
  write_docs(dir.file("short.h5"), {7, 3, 9, 6, 20}, 2000);
  const std::vector<dt::DatasetSpec> specs = {{dir.file("long"), 0.6}, {dir.file("short.h5"), 0.4}};
  // Dataset 0 has 42 windows, 29 long: 100 samples per epoch; 240 global
  // samples read about 144 of them, so the resume points fall in its first
  // and second epochs (and in several epochs of dataset 1).
  const int64_t mb = 2, total = 240;
  dt::DataLoader whole(specs, long_options(mb));
  ASSERT_EQ(whole.datasets()[0].samples_per_epoch, 100);
  const std::vector<Tokens> want = read_samples(whole, mb, total);
  for (int64_t from : {int64_t(2), int64_t(38), int64_t(170)}) {
    dt::DataLoader resumed(specs, long_options(mb));
    read_samples(resumed, mb, 4);  // some reading first: restore must discard it
    resumed.restore(from);
    const std::vector<Tokens> got = read_samples(resumed, mb, total - from);
    EXPECT_EQ(resumed.state(), total);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + from)) << "resumed at " << from;
  }
}

TEST(LongDocUpsampling, RejectsANegativeThresholdOrAFactorBelowOne) {
  ScratchDir dir;
  write_docs(dir.file("a.h5"), kDocsA, 1);
  EXPECT_NE(error_of([&] { dt::DataLoader({{dir.path, 1.0}}, long_options(1, -1, 2)); }).find("long_doc_tokens -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { dt::DataLoader({{dir.path, 1.0}}, long_options(1, 8, 0)); }).find("long_doc_factor 0"),
            std::string::npos);
}
