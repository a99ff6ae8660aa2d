// difftron prepare's body (data/prepare_shards.hpp, prepare_reader.hpp,
// prepare_output.hpp): the shards hold the documents in input order whatever
// the thread count, bad input is counted and skipped under skip_bad, every
// input form is read, the manifest that marks a dataset complete comes last,
// and a failed run leaves the dataset it was to replace as it was.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/dataset_manifest.hpp"
#include "data/prepare_output.hpp"
#include "data/prepare_reader.hpp"
#include "data/prepare_shards.hpp"
#include "data/shard_reader.hpp"
#include "data/tokenizer.hpp"
#include "tests/unit/test_util.hpp"

namespace fs = std::filesystem;

namespace {

using TempDir = dt_test::ScratchDir;
using dt_test::error_of;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void write_gzip(const std::string& path, const std::string& text) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(gz);
}

std::string jsonl_line(const std::string& text) { return "{\"id\": 1, \"text\": \"" + text + "\"}\n"; }

// Every shard of dir, in name order, as one token stream and the documents'
// lengths; dir must be a complete dataset (its manifest lists every shard).
struct Shards {
  int count = 0;
  std::vector<int32_t> tokens;
  std::vector<uint64_t> doc_lengths;  // tokens of each document, EOS included
};

Shards read_shards(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name.ends_with(".h5") || name == dt::kDatasetManifest) << name << " (a .tmp file left behind?)";
  }
  Shards s;
  for (const dt::ListedShard& shard : dt::dataset_shards(dir)) {
    const dt::ShardReader r = dt::open_listed_shard(shard);
    std::vector<int32_t> t(static_cast<size_t>(r.num_tokens()));
    r.read_tokens(0, r.num_tokens(), t.data());
    s.tokens.insert(s.tokens.end(), t.begin(), t.end());
    const auto& off = r.doc_offsets();
    for (size_t i = 0; i + 1 < off.size(); ++i) s.doc_lengths.push_back(off[i + 1] - off[i]);
    ++s.count;
  }
  return s;
}

// The byte tokenizer's shard contents for these documents: bytes, then EOS (256).
Shards expected(const std::vector<std::string>& docs) {
  Shards s;
  for (const auto& d : docs) {
    for (unsigned char c : d) s.tokens.push_back(c);
    s.tokens.push_back(256);
    s.doc_lengths.push_back(d.size() + 1);
  }
  return s;
}

dt::PrepareStats run(const dt::PrepareOptions& o, const std::vector<std::string>& files) {
  fs::create_directories(o.output);
  auto tok = dt::make_tokenizer(o.tokenizer);
  return dt::prepare_shards(o, files, *tok);
}


// The byte tokenizer, except that a document holding "THROW" makes encode throw
// and one holding "BAD-ID" gets an id outside the vocabulary (the shard writer's error).
struct FaultyTokenizer final : dt::Tokenizer {
  std::unique_ptr<dt::Tokenizer> bytes = dt::make_byte_tokenizer();
  std::vector<int32_t> encode(std::string_view text) const override {
    if (text.find("THROW") != std::string_view::npos) dt::fail("tokenizer failed on purpose");
    std::vector<int32_t> ids = bytes->encode(text);
    if (text.find("BAD-ID") != std::string_view::npos) ids.push_back(9999);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override { return bytes->decode(ids); }
  int64_t vocab_size() const override { return bytes->vocab_size(); }
  int32_t eos_id() const override { return bytes->eos_id(); }
  std::string name() const override { return "byte"; }
};

}  // namespace

// Many small batches of uneven documents, split over several shards: the
// shards written with 1, 2 and 5 threads hold exactly the input, in order.
TEST(PrepareThreads, AnyThreadCountWritesTheDocumentsInInputOrder) {
  TempDir dir;
  std::vector<std::string> docs, files;
  std::string jsonl;
  uint32_t seed = 12345;
  for (int i = 0; i < 30000; ++i) {  // > 7 batches of 4096 documents
    seed = seed * 1664525u + 1013904223u;
    std::string d = "doc " + std::to_string(i) + std::string(seed >> 27, 'a' + i % 26);
    jsonl += jsonl_line(d);
    docs.push_back(d);
  }
  write_gzip(dir.file("a.jsonl.gz"), jsonl);
  files.push_back(dir.file("a.jsonl.gz"));
  for (int i = 0; i < 3; ++i) {  // and a few one-document text files after it
    docs.push_back(std::string(300000 * (i + 1), 'x' + i));
    files.push_back(dir.file("t" + std::to_string(i) + ".txt"));
    write_file(files.back(), docs.back());
  }
  const Shards want = expected(docs);

  for (int threads : {1, 2, 5}) {
    dt::PrepareOptions o;
    o.output = dir.file("out" + std::to_string(threads));
    o.shard_tokens = 100000;
    o.threads = threads;
    const dt::PrepareStats st = run(o, files);
    const Shards got = read_shards(o.output);
    EXPECT_EQ(st.documents, static_cast<int64_t>(docs.size())) << threads << " threads";
    EXPECT_EQ(st.tokens, static_cast<int64_t>(want.tokens.size())) << threads << " threads";
    EXPECT_EQ(st.shards, got.count) << threads << " threads";
    EXPECT_GT(got.count, 5) << threads << " threads";
    EXPECT_TRUE(got.tokens == want.tokens) << threads << " threads: token streams differ";
    EXPECT_TRUE(got.doc_lengths == want.doc_lengths) << threads << " threads: doc offsets differ";
  }
}

TEST(PrepareSkipBad, TwoBadLinesAmongFiveAreCountedAndSkipped) {
  TempDir dir;
  write_file(dir.file("mixed.jsonl"), jsonl_line("one") + "{\"text\": \"unterminated}\n" + jsonl_line("two") +
                                          "{\"body\": \"no text field\"}\n" + jsonl_line("three"));
  dt::PrepareOptions o;
  o.output = dir.file("out");
  o.skip_bad = true;
  const dt::PrepareStats st = run(o, {dir.file("mixed.jsonl")});
  EXPECT_EQ(st.documents, 3);
  EXPECT_EQ(st.skipped, 2);
  EXPECT_TRUE(read_shards(o.output).tokens == expected({"one", "two", "three"}).tokens);

  o.output = dir.file("out_strict");
  o.skip_bad = false;
  const std::string err = error_of([&] { run(o, {dir.file("mixed.jsonl")}); });
  EXPECT_NE(err.find("mixed.jsonl:2: "), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

// A truncated gzip and a gzip header over garbage: both are read failures,
// skipped (one count each) after the text that decompressed cleanly.
TEST(PrepareSkipBad, CorruptGzipFilesAreSkippedAfterTheirGoodText) {
  TempDir dir;
  std::string big;
  for (int i = 0; i < 100000; ++i) big += jsonl_line("line " + std::to_string(i));
  write_gzip(dir.file("cut.jsonl.gz"), big);
  fs::resize_file(dir.file("cut.jsonl.gz"), fs::file_size(dir.file("cut.jsonl.gz")) / 2);
  std::string garbage = "\x1f\x8b\x08";
  garbage += std::string(5000, '\x55');
  write_file(dir.file("garbage.txt.gz"), garbage);
  write_file(dir.file("good.txt"), "good");
  const std::vector<std::string> files = {dir.file("cut.jsonl.gz"), dir.file("garbage.txt.gz"), dir.file("good.txt")};

  dt::PrepareOptions o;
  o.output = dir.file("out");
  std::string err = error_of([&] { run(o, files); });
  EXPECT_NE(err.find("cut.jsonl.gz:"), std::string::npos) << err;
  EXPECT_NE(err.find("corrupt or truncated gzip"), std::string::npos) << err;

  o.output = dir.file("out_skip");
  o.skip_bad = true;
  const dt::PrepareStats st = run(o, files);
  EXPECT_EQ(st.skipped, 2);
  EXPECT_GT(st.documents, 1000);      // the first half of cut.jsonl.gz ...
  EXPECT_LT(st.documents, 100000);    // ... but not the rest
  const Shards got = read_shards(o.output);
  const std::vector<int32_t> tail = expected({"good"}).tokens;
  ASSERT_GE(got.tokens.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), got.tokens.end() - tail.size()));
}

TEST(PrepareInput, GzipJsonlReadsLikePlainJsonlWithAnyTextField) {
  TempDir dir;
  const std::string lines = "{\"body\": \"caf\\u00e9\"}\r\n\n  \n{\"body\": \"b\"}";  // CRLF, blank lines, no final \n
  write_file(dir.file("plain.jsonl"), lines);
  write_gzip(dir.file("packed.jsonl.gz"), lines);
  for (const char* name : {"plain.jsonl", "packed.jsonl.gz"}) {
    dt::PrepareOptions o;
    o.output = dir.file(std::string("out_") + name);
    o.text_field = "body";
    EXPECT_EQ(run(o, {dir.file(name)}).documents, 2) << name;
    EXPECT_TRUE(read_shards(o.output).tokens == expected({"caf\xc3\xa9", "b"}).tokens) << name;
  }
}

// The separator may straddle the reader's 1 MiB chunks; empty pieces are dropped.
TEST(PrepareInput, SeparatorSplitsTextFilesIntoDocuments) {
  TempDir dir;
  const std::string first((size_t{1} << 20) - 3, 'a');  // the first separator spans bytes 2^20-3 .. 2^20+3
  const std::string text = first + "<|sep|>second<|sep|><|sep|>third<|sep|>";
  write_file(dir.file("a.txt"), text);
  dt::PrepareOptions o;
  o.output = dir.file("out");
  o.separator = "<|sep|>";
  const dt::PrepareStats st = run(o, {dir.file("a.txt")});
  EXPECT_EQ(st.documents, 3);
  EXPECT_TRUE(read_shards(o.output).doc_lengths == expected({first, "second", "third"}).doc_lengths);
}

TEST(PrepareReader, RawOffsetReachesTheCompressedFileSize) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 200000; ++i) text += jsonl_line(std::to_string(i));
  write_gzip(dir.file("a.jsonl.gz"), text);
  dt::DocReader r(dir.file("a.jsonl.gz"), dt::DocFormat{true, "", "text"});
  std::string doc, why;
  int64_t docs = 0, last = 0;
  while (r.next(doc, why) == dt::DocReader::Next::kDocument) {
    EXPECT_GE(r.raw_offset(), last);
    last = r.raw_offset();
    ++docs;
  }
  EXPECT_EQ(docs, 200000);
  EXPECT_EQ(r.raw_offset(), static_cast<int64_t>(fs::file_size(dir.file("a.jsonl.gz"))));
}

TEST(PrepareReader, UnopenableFileFailsWithOneLineNamingIt) {
  const std::string err = error_of([] { dt::DocReader r("/nonexistent/x.txt", dt::DocFormat{}); });
  EXPECT_NE(err.find("/nonexistent/x.txt: cannot open"), std::string::npos) << err;
}

// A worker's error (encode throws) and the writer's error (an id the shard
// cannot hold) both stop every thread and come back from prepare_shards; the
// shard being written is removed, so no .tmp file is left.
TEST(PrepareThreads, WorkerAndWriterErrorsStopThePipelineAndAreRethrown) {
  TempDir dir;
  for (const char* poison : {"THROW", "BAD-ID"}) {
    std::string jsonl;
    for (int i = 0; i < 20000; ++i) jsonl += jsonl_line(i == 15000 ? poison : "doc " + std::to_string(i));
    write_file(dir.file("a.jsonl"), jsonl);
    dt::PrepareOptions o;
    o.output = dir.file(std::string("out_") + poison);
    o.threads = 3;
    fs::create_directories(o.output);
    FaultyTokenizer tok;
    const std::string err = error_of([&] { dt::prepare_shards(o, {dir.file("a.jsonl")}, tok); });
    EXPECT_NE(err.find(poison[0] == 'T' ? "on purpose" : "token id 9999 out of range"), std::string::npos) << err;
    for (const auto& e : fs::directory_iterator(o.output))
      EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
    EXPECT_FALSE(fs::exists(o.output + "/" + dt::kDatasetManifest)) << "a failed prepare marked its output complete";
  }
}

// The manifest comes last and lists every shard with the tokens it holds.
TEST(PrepareManifest, ListsEveryShardWithItsTokens) {
  TempDir dir;
  write_file(dir.file("a.txt"), std::string(300, 'a'));
  write_file(dir.file("b.txt"), std::string(200, 'b'));
  write_file(dir.file("c.txt"), std::string(100, 'c'));
  dt::PrepareOptions o;
  o.output = dir.file("out");
  o.shard_tokens = 350;
  const dt::PrepareStats stats = run(o, {dir.file("a.txt"), dir.file("b.txt"), dir.file("c.txt")});
  const std::vector<dt::ListedShard> shards = dt::dataset_shards(o.output);
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards[0].path, o.output + "/shard_00000.h5");
  EXPECT_EQ(shards[0].num_tokens, 301);
  EXPECT_EQ(shards[1].num_tokens, 302);
  EXPECT_EQ(shards[0].num_tokens + shards[1].num_tokens, stats.tokens);
}

// SIGINT or SIGTERM sets the stop flag: reading stops at the next document,
// even under skip_bad (an interruption is not a bad file), and the output is
// left without a manifest, so nothing takes it for a dataset.
TEST(PrepareManifest, StopFlagInterruptsAndMarksNothingComplete) {
  TempDir dir;
  std::string jsonl;
  for (int i = 0; i < 1000; ++i) jsonl += jsonl_line("doc " + std::to_string(i));
  write_file(dir.file("a.jsonl"), jsonl);
  const std::atomic<int> stop{SIGINT};
  dt::PrepareOptions o;
  o.output = dir.file("out");
  o.skip_bad = true;
  o.stop = &stop;
  const std::string err = error_of([&] { run(o, {dir.file("a.jsonl")}); });
  EXPECT_NE(err.find("interrupted by signal " + std::to_string(SIGINT)), std::string::npos) << err;
  EXPECT_TRUE(fs::is_empty(o.output));
}

namespace {

// What the command does (cli/cmd_prepare.cpp): the new dataset is written
// beside the old one and swapped in only when complete.
dt::PrepareStats prepare_into(const std::string& out, const std::vector<std::string>& files, bool force) {
  dt::PrepareOutput output(out, force);
  dt::PrepareOptions o;
  o.output = output.tmp();
  const dt::PrepareStats stats = run(o, files);
  output.commit();
  return stats;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST(PrepareOutput, FailedForceRunLeavesTheOldDatasetAsItWas) {
  TempDir dir;
  write_file(dir.file("good.txt"), "an old document");
  write_file(dir.file("bad.jsonl"), "{\"text\": \"fine\"}\n{\"text\": \"unterminated}\n");
  const std::string out = dir.file("data");
  prepare_into(out, {dir.file("good.txt")}, false);
  const Shards before = read_shards(out);
  const std::string err = error_of([&] { prepare_into(out, {dir.file("good.txt"), dir.file("bad.jsonl")}, true); });
  EXPECT_NE(err.find("bad.jsonl:2:"), std::string::npos) << err;
  EXPECT_EQ(read_shards(out).tokens, before.tokens);
  EXPECT_EQ(entries(dir.path), (std::vector<std::string>{"bad.jsonl", "data", "good.txt"}));
}

TEST(PrepareOutput, CommitReplacesTheWholeDataset) {
  TempDir dir;
  write_file(dir.file("long.txt"), std::string(500, 'x'));
  write_file(dir.file("short.txt"), "y");
  const std::string out = dir.file("data");
  prepare_into(out, {dir.file("long.txt"), dir.file("short.txt")}, false);
  ASSERT_EQ(entries(out).size(), 2u);
  prepare_into(out, {dir.file("short.txt")}, true);
  EXPECT_EQ(entries(out), (std::vector<std::string>{dt::kDatasetManifest, "shard_00000.h5"}));
  EXPECT_EQ(read_shards(out).tokens, expected({"y"}).tokens);
  EXPECT_EQ(entries(dir.path), (std::vector<std::string>{"data", "long.txt", "short.txt"}));
}

TEST(PrepareOutput, RefusesAnOldDatasetWithoutForceAndFilesItDidNotWrite) {
  TempDir dir;
  write_file(dir.file("a.txt"), "text");
  prepare_into(dir.file("data"), {dir.file("a.txt")}, false);
  std::string err = error_of([&] { dt::PrepareOutput o(dir.file("data"), false); });
  EXPECT_NE(err.find("already holds a dataset"), std::string::npos) << err;
  EXPECT_NE(err.find("--force"), std::string::npos) << err;
  write_file(dir.file("data/notes.md"), "mine");
  err = error_of([&] { dt::PrepareOutput o(dir.file("data"), true); });
  EXPECT_NE(err.find("holds notes.md, which difftron prepare does not write"), std::string::npos) << err;
  EXPECT_EQ(entries(dir.path), (std::vector<std::string>{"a.txt", "data"}));
}
