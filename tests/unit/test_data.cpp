// Data pipeline, part 1: the byte tokenizer, the JSON-lines field reader and
// the HDF5 shard format (writer, reader, and the reader's one-line errors).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/hdf5_util.hpp"
#include "data/jsonl_field.hpp"
#include "data/shard_reader.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "tests/unit/test_util.hpp"

namespace fs = std::filesystem;

namespace {

using TempDir = dt_test::ScratchDir;
using dt_test::error_of;


// Writes docs with the byte tokenizer's ids and returns the expected /tokens.
std::vector<int32_t> write_shard(const std::string& path, const std::vector<std::vector<int32_t>>& docs,
                                 int64_t vocab, int32_t eos) {
  dt::ShardWriter w(path, "test", vocab, eos);
  std::vector<int32_t> stream;
  for (const auto& d : docs) {
    w.add_document(d);
    stream.insert(stream.end(), d.begin(), d.end());
    stream.push_back(eos);
  }
  w.close();
  return stream;
}

size_t token_bytes_on_disk(const std::string& path) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/tokens", H5P_DEFAULT);
  hid_t t = H5Dget_type(d);
  size_t n = H5Tget_size(t);
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
  return n;
}

// Replaces a root attribute of an existing shard, as a foreign or broken tool might.
template <typename Write>
void rewrite_attr(const std::string& path, const char* name, Write write) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Adelete(f, name);
  write(f);
  H5Fclose(f);
}

}  // namespace

TEST(TokenizerByte, RoundTripsEveryByteIncludingInvalidUtf8) {
  auto tok = dt::make_tokenizer("byte");
  std::string text;
  for (int b = 0; b < 256; ++b) text.push_back(static_cast<char>(b));
  text += "\xff\xfe\xc3(\xed\xa0\x80 caf\xc3\xa9";  // stray, overlong and surrogate bytes
  std::vector<int32_t> ids = tok->encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(text[i]));
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(TokenizerByte, HasVocab257WithEos256ThatDecodesToNothing) {
  auto tok = dt::make_tokenizer("byte");
  EXPECT_EQ(tok->vocab_size(), 257);
  EXPECT_EQ(tok->eos_id(), 256);
  EXPECT_EQ(tok->name(), "byte");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{'h', 'i', 256, '!'}), "hi!");
  std::string err = error_of([&] { tok->decode(std::vector<int32_t>{257}); });
  EXPECT_NE(err.find("257"), std::string::npos) << err;
}

TEST(TokenizerFactory, UnknownSpecFailsWithOneLineNamingByte) {
  std::string err = error_of([] { dt::make_tokenizer("cl100k_base"); });
  EXPECT_NE(err.find("cl100k_base"), std::string::npos) << err;
  EXPECT_NE(err.find("\"byte\""), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(DataJsonl, DecodesEscapesAndSurrogatePairsOfTheTopLevelField) {
  std::string out, why;
  const std::string line =
      R"( {"id": 7, "meta": {"text": "nested", "x": [1, -2.5e3, true, null, {}]},)"
      R"( "text": "a\"b\\c\/\n\t\u00e9\ud83d\ude00\u20AC" } )";
  ASSERT_TRUE(dt::jsonl_string_field(line, "text", out, why)) << why;
  EXPECT_EQ(out, "a\"b\\c/\n\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac");
}

TEST(DataJsonl, LoneSurrogatesBecomeReplacementCharacters) {
  std::string out, why;
  ASSERT_TRUE(dt::jsonl_string_field(R"({"text": "x\ud800y\udc00"})", "text", out, why)) << why;
  EXPECT_EQ(out, "x\xef\xbf\xbdy\xef\xbf\xbd");
}

TEST(DataJsonl, ReportsMissingFieldWrongTypeAndSyntaxErrors) {
  std::string out, why;
  EXPECT_FALSE(dt::jsonl_string_field(R"({"body": "x"})", "text", out, why));
  EXPECT_EQ(why, "no field \"text\"");
  EXPECT_FALSE(dt::jsonl_string_field(R"({"text": 12})", "text", out, why));
  EXPECT_EQ(why, "field \"text\" is a number, expected a string");
  EXPECT_FALSE(dt::jsonl_string_field(R"({"text": "x")", "text", out, why));
  EXPECT_NE(why.find("invalid JSON at column"), std::string::npos) << why;
  EXPECT_FALSE(dt::jsonl_string_field(R"({"text": "x"} trailing)", "text", out, why));
  EXPECT_NE(why.find("after the object"), std::string::npos) << why;
  EXPECT_FALSE(dt::jsonl_string_field(R"({"text": "\q"})", "text", out, why));
  EXPECT_NE(why.find("escape"), std::string::npos) << why;
  EXPECT_FALSE(dt::jsonl_string_field("[1, 2]", "text", out, why));
}

TEST(ShardRoundTrip, Uint16ShardKeepsTokensOffsetsAndAttributes) {
  TempDir dir;
  const std::string path = dir.file("shard_00000.h5");
  auto tok = dt::make_tokenizer("byte");
  std::vector<std::vector<int32_t>> docs = {tok->encode("hello"), tok->encode(std::string("\xff\x00z", 3)), tok->encode("x")};
  std::vector<int32_t> expected = write_shard(path, docs, tok->vocab_size(), tok->eos_id());

  dt::ShardReader r(path);
  EXPECT_EQ(r.meta().tokenizer, "test");
  EXPECT_EQ(r.meta().vocab_size, 257);
  EXPECT_EQ(r.meta().eos_id, 256);
  EXPECT_EQ(r.meta().num_docs, 3);
  EXPECT_EQ(r.meta().num_tokens, 5 + 1 + 3 + 1 + 1 + 1);
  EXPECT_EQ(r.doc_offsets(), (std::vector<uint64_t>{0, 6, 10, 12}));
  EXPECT_EQ(token_bytes_on_disk(path), 2u);
  std::vector<int32_t> got(r.num_tokens());
  r.read_tokens(0, r.num_tokens(), got.data());
  EXPECT_EQ(got, expected);
  // Every document ends with EOS: the token before each next offset.
  for (size_t d = 1; d < r.doc_offsets().size(); ++d) EXPECT_EQ(got[r.doc_offsets()[d] - 1], 256);
}

TEST(ShardRoundTrip, Uint32ShardWhenVocabExceeds65536) {
  TempDir dir;
  const std::string path = dir.file("big_vocab.h5");
  std::vector<int32_t> expected = write_shard(path, {{0, 65535, 65536, 99998}, {70000}}, 100000, 99999);
  dt::ShardReader r(path);
  EXPECT_EQ(token_bytes_on_disk(path), 4u);
  std::vector<int32_t> got(r.num_tokens());
  r.read_tokens(0, r.num_tokens(), got.data());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(got[4], 99999);
}

TEST(ShardRoundTrip, RangeReadsAcrossChunkBoundariesMatch) {
  TempDir dir;
  const std::string path = dir.file("chunks.h5");
  std::vector<std::vector<int32_t>> docs;
  for (int d = 0; d < 3; ++d) {
    std::vector<int32_t> doc(70000);  // larger than one 64K-token chunk
    for (size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<int32_t>((i * 7 + d) % 1000);
    docs.push_back(doc);
  }
  std::vector<int32_t> expected = write_shard(path, docs, 1001, 1000);
  dt::ShardReader r(path);
  ASSERT_EQ(r.num_tokens(), static_cast<int64_t>(expected.size()));
  for (auto [b, e] : {std::pair<int64_t, int64_t>{65530, 65540}, {0, 1}, {131000, 210003}, {5, 5}}) {
    std::vector<int32_t> got(e - b);
    r.read_tokens(b, e, got.data());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin() + b)) << b << ".." << e;
  }
  std::string err = error_of([&] { int32_t x; r.read_tokens(0, r.num_tokens() + 1, &x); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
}

TEST(ShardWriter, OnlyTheTmpNameExistsUntilClose) {
  TempDir dir;
  const std::string path = dir.file("shard_00000.h5");
  dt::ShardWriter w(path, "byte", 257, 256);
  std::vector<int32_t> doc(200000, 'a');  // several flushed chunks already on disk
  w.add_document(doc);
  // A crash now would leave only the .tmp file: the final name must not exist.
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".tmp"));
  w.close();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(dt::ShardReader(path).num_tokens(), 200001);
}

TEST(ShardWriter, AbandonedWriterLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("shard_00000.h5");
  {
    dt::ShardWriter w(path, "byte", 257, 256);
    w.add_document(std::vector<int32_t>{1, 2, 3});
    EXPECT_THROW(w.add_document(std::vector<int32_t>{257}), dt::Error);  // id outside the vocabulary
  }
  EXPECT_TRUE(fs::is_empty(dir.path));
}

TEST(ShardReader, RejectsNonHdf5FileWithOneLineNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("notes.h5");
  { std::ofstream(path) << "just some text, not HDF5\n"; }
  std::string err = error_of([&] { dt::ShardReader r(path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("not an HDF5 file"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  err = error_of([&] { dt::ShardReader r(dir.file("missing.h5")); });
  EXPECT_NE(err.find("missing.h5: no such file"), std::string::npos) << err;
}

TEST(ShardReader, RejectsWrongFormatAttributeWithOneLineNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  write_shard(path, {{1, 2, 3}}, 257, 256);
  rewrite_attr(path, "format", [](hid_t f) { dt::h5_write_attr_string(f, "format", "something-else"); });
  std::string err = error_of([&] { dt::ShardReader r(path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("\"something-else\", expected \"difftron-tokens\""), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(ShardReader, RejectsTruncatedFileWithOneLineNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  write_shard(path, {std::vector<int32_t>(100000, 7)}, 257, 256);
  fs::resize_file(path, fs::file_size(path) / 2);
  std::string err = error_of([&] { dt::ShardReader r(path); });
  EXPECT_NE(err.find("shard " + path + ": "), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(ShardReader, RejectsNumTokensThatDisagreesWithTokens) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  write_shard(path, {{1, 2, 3}}, 257, 256);
  rewrite_attr(path, "num_tokens", [](hid_t f) { dt::h5_write_attr_int(f, "num_tokens", 10); });
  std::string err = error_of([&] { dt::ShardReader r(path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("num_tokens attribute says 10 but /tokens holds 4"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

// The serial HDF5 here keeps an error stack, and the switch that prints it, per
// thread: silencing must reach every thread that asks, not only the first one
// (the loader's prefetch thread often is), or a later failure on the main
// thread prints HDF5's own dump beside our line.
TEST(Hdf5Errors, SilencingReachesEveryThreadThatAsks) {
  std::thread([] { dt::h5_silence_errors(); }).join();
  dt::h5_silence_errors();
  H5E_auto2_t print = nullptr;
  void* data = nullptr;
  ASSERT_GE(H5Eget_auto2(H5E_DEFAULT, &print, &data), 0);
  EXPECT_EQ(print, nullptr);
}

// A failed open leaves its error records on the thread that made it. Records
// left on a thread that then ends (the loader's prefetch thread) keep HDF5
// ids alive, and H5close at exit prints "infinite loop closing library" after
// our one line: a failing reader leaves its thread's error stack empty.
TEST(ShardReader, FailureLeavesNoHdf5ErrorRecordsOnItsThread) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  write_shard(path, {std::vector<int32_t>(100000, 7)}, 257, 256);
  fs::resize_file(path, fs::file_size(path) / 2);
  std::string err;
  ssize_t records = -1;
  std::thread([&] {
    dt::h5_silence_errors();
    err = error_of([&] { dt::ShardReader r(path); });
    records = H5Eget_num(H5E_DEFAULT);
  }).join();
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  EXPECT_EQ(records, 0);
}
