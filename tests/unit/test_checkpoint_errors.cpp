// Checkpoints meeting damage and bad input (DESIGN §6, §7): a truncated,
// corrupt, missing or incompatible checkpoint makes resume throw dt::Error
// with one line naming the file or key; keep_last and `--resume auto` only
// ever trust complete checkpoints. Every test works on a real checkpoint
// written by a tiny single-process Trainer.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "checkpoint/checkpoint.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The message of the dt::Error that resume(dir) throws; any other outcome fails the test.
std::string resume_error(Trainer& t, const std::string& dir) {
  try {
    t.resume(dir);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "resume(" << dir << ") threw a non-dt::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "resume(" << dir << ") did not throw";
  return "";
}

// One line (DESIGN §7) that contains every one of `parts`.
void expect_one_line_naming(const std::string& msg, const std::vector<std::string>& parts) {
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line:\n" << msg;
  for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' missing in: " << msg;
}

struct RunOptions {
  std::string ck_dir;
  int64_t max_steps = 2, every_steps = 2;
  int keep_last = 3;
  int d_model = 32;
};

// Each test gets its own scratch directory (ctest runs test processes in
// parallel) with a byte-tokenized shard of pseudo-random words.
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dt_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/shards");
    auto tok = make_tokenizer("byte");
    ShardWriter w(root_ + "/shards/shard_00000.h5", tok->name(), tok->vocab_size(), tok->eos_id());
    const char* words[] = {"the ", "model ", "attends ", "to ", "noise ", "less ", "than ", "before. "};
    uint32_t x = 12345;
    for (int d = 0; d < 40; ++d) {
      std::string text;
      for (int i = 0; i < 40; ++i) text += words[(x = x * 1664525u + 1013904223u) >> 29];
      w.add_document(tok->encode(text));
    }
    w.close();
    write_dataset_manifest(root_ + "/shards");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Trainer> make_trainer(const RunOptions& o) const {
    const std::string yaml = "model: {vocab_size: 320, d_model: " + std::to_string(o.d_model) +
                             ", n_layers: 1, n_heads: 2, n_kv_heads: 2, ffn_hidden: 88}\n"
                             "train: {seq_len: 16, global_batch_size: 4, max_steps: " + std::to_string(o.max_steps) +
                             ", lr: 1.0e-3, warmup_steps: 1, log_every: 1, run_dir: " + root_ + "/run}\n"
                             "data: {datasets: [{path: " + root_ + "/shards, weight: 1.0}]}\n"
                             "parallel: {micro_batch_size: 4}\n"
                             "checkpoint: {dir: " + o.ck_dir + ", every_steps: " + std::to_string(o.every_steps) +
                             ", keep_last: " + std::to_string(o.keep_last) + "}\n"
                             "runtime: {threads: 1}\n";
    return std::make_unique<Trainer>(load_config_text(yaml));
  }

  // Trains 2 steps saving every 2 and returns the checkpoint <root>/ck/step_00000002.
  std::string make_checkpoint() {
    make_trainer({.ck_dir = root_ + "/ck"})->run();
    const std::string dir = root_ + "/ck/step_00000002";
    EXPECT_TRUE(fs::exists(dir + "/manifest.yaml"));
    return dir;
  }

  // A copy of checkpoint `dir` as <root>/<name>/step_00000002, to damage.
  std::string copy_of(const std::string& dir, const std::string& name) const {
    const std::string to = root_ + "/" + name + "/step_00000002";
    fs::create_directories(to);
    fs::copy(dir, to, fs::copy_options::recursive);
    return to;
  }

  // A copy of checkpoint `dir` as <root>/<name>/step_00000002 whose manifest has
  // every `from` replaced by `to`.
  std::string edited_copy(const std::string& dir, const std::string& name, const std::string& from,
                          const std::string& to) const {
    const std::string copy = copy_of(dir, name);
    std::string m = read_text(copy + "/manifest.yaml");
    EXPECT_NE(m.find(from), std::string::npos) << "'" << from << "' not in the manifest:\n" << m;
    for (size_t at = 0; (at = m.find(from, at)) != std::string::npos; at += to.size()) m.replace(at, from.size(), to);
    write_text(copy + "/manifest.yaml", m);
    return copy;
  }

  // The manifest's line listing shard_0.h5 with its checksum, newline included.
  static std::string files_entry(const std::string& dir) {
    const std::string m = read_text(dir + "/manifest.yaml");
    const size_t at = m.find("  - {name: shard_0.h5, crc32:");
    EXPECT_NE(at, std::string::npos) << m;
    return at == std::string::npos ? "" : m.substr(at, m.find('\n', at) + 1 - at);
  }

  // A trainer of the checkpoint's model whose checkpoint.dir is unused.
  std::unique_ptr<Trainer> fresh_trainer() const { return make_trainer({.ck_dir = root_ + "/unused"}); }

  std::string root_;
};

// The damaged-copy tests below only mean something if an undamaged copy loads.
TEST_F(CheckpointTest, IntactCopyResumesAtItsStep) {
  const std::string ck = copy_of(make_checkpoint(), "copy");
  auto t = fresh_trainer();
  t->resume(ck);
  EXPECT_EQ(t->steps_done(), 2);
}

TEST_F(CheckpointTest, TruncatedShardFailsNamingFileAndBytes) {
  const std::string ck = copy_of(make_checkpoint(), "truncated");
  const std::string shard = ck + "/shard_0.h5";
  ASSERT_TRUE(fs::exists(shard));
  const auto size = fs::file_size(shard);
  fs::resize_file(shard, size / 2);
  auto t = fresh_trainer();
  const std::string msg = resume_error(*t, ck);
  expect_one_line_naming(msg, {shard, "truncated", std::to_string(size / 2) + " bytes", std::to_string(size)});
  EXPECT_EQ(t->steps_done(), 0) << "a failed resume must leave the trainer at its start";
}

TEST_F(CheckpointTest, FlippedByteOfSameSizeFailsChecksum) {
  const std::string ck = copy_of(make_checkpoint(), "flipped");
  const std::string shard = ck + "/shard_0.h5";
  std::string bytes = read_text(shard);
  ASSERT_GT(bytes.size(), 100u);
  bytes[bytes.size() / 2] ^= 0x01;  // one bit in the middle: the weights' data, not HDF5 metadata
  write_text(shard, bytes);
  ASSERT_EQ(fs::file_size(shard), bytes.size());
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, ck), {shard, "checksum"});
}

// Checkpoints of older versions have no crc32 per piece: a file a piece is
// read from is then checked whole, so the same flipped byte is still found.
TEST_F(CheckpointTest, WithoutPieceChecksumsTheWholeFileIsChecked) {
  const std::string ck = copy_of(make_checkpoint(), "old_format");
  const std::string manifest = read_text(ck + "/manifest.yaml");
  const std::string old = std::regex_replace(manifest, std::regex(", crc32: [0-9]+\\}"), "}");
  ASSERT_EQ(std::count(old.begin(), old.end(), '\n'), std::count(manifest.begin(), manifest.end(), '\n'));
  ASSERT_NE(old.find("name: shard_0.h5, crc32:"), std::string::npos) << "the files' checksums must stay";
  ASSERT_EQ(old.find("file: shard_0.h5, crc32:"), std::string::npos) << "the pieces' checksums must go";
  write_text(ck + "/manifest.yaml", old);
  auto intact = fresh_trainer();
  intact->resume(ck);
  EXPECT_EQ(intact->steps_done(), 2);
  const std::string shard = ck + "/shard_0.h5";
  std::string bytes = read_text(shard);
  bytes[bytes.size() / 2] ^= 0x01;
  write_text(shard, bytes);
  auto t = fresh_trainer();
  const std::string msg = resume_error(*t, ck);
  expect_one_line_naming(msg, {shard, "checksum mismatch", "expected crc32"});
  EXPECT_EQ(msg.find("dataset"), std::string::npos) << "found by a piece's checksum, not the file's: " << msg;
}

TEST_F(CheckpointTest, MissingShardFailsNamingFile) {
  const std::string ck = copy_of(make_checkpoint(), "missing");
  const std::string shard = ck + "/shard_0.h5";
  ASSERT_TRUE(fs::remove(shard));
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, ck), {shard, "missing"});
}

// A run whose model differs from the checkpoint's: the files are intact, the
// shapes are not what the model expects.
TEST_F(CheckpointTest, ConfigWithDifferentModelFailsNamingKey) {
  const std::string ck = make_checkpoint();
  auto t = make_trainer({.ck_dir = root_ + "/unused", .d_model = 64});
  expect_one_line_naming(resume_error(*t, ck), {ck, "model.d_model", "32", "64"});
}

// The manifest's config edited (its shard checksums still match): the stored
// model no longer matches this run's, and resume says which key differs.
TEST_F(CheckpointTest, ManifestWithEditedModelConfigFailsNamingKey) {
  const std::string ck = copy_of(make_checkpoint(), "edited");
  std::string manifest = read_text(ck + "/manifest.yaml");
  const size_t at = manifest.find("d_model: 32");
  ASSERT_NE(at, std::string::npos) << manifest.substr(0, 2000);
  manifest.replace(at, 11, "d_model: 48");
  write_text(ck + "/manifest.yaml", manifest);
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, ck), {"model.d_model", "48", "32"});
}

TEST_F(CheckpointTest, DirectoryWithoutManifestFailsWithOneLine) {
  const std::string ck = copy_of(make_checkpoint(), "no_manifest");
  ASSERT_TRUE(fs::remove(ck + "/manifest.yaml"));
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, ck), {ck, "manifest.yaml"});
}

// The manifest itself damaged (cut short mid-line, or at a line boundary so
// that it is valid YAML missing its last tensors, or not YAML at all): still one line.
TEST_F(CheckpointTest, DamagedManifestFailsWithOneLine) {
  const std::string ck = make_checkpoint();
  const std::string manifest = read_text(ck + "/manifest.yaml");
  const size_t last_tensor = manifest.rfind("\n  - {name:");
  ASSERT_NE(last_tensor, std::string::npos) << manifest;
  for (size_t cut : {size_t(20), manifest.size() / 3, manifest.size() / 2, manifest.size() - 40, last_tensor + 1}) {
    const std::string copy = copy_of(ck, "cut_" + std::to_string(cut));
    write_text(copy + "/manifest.yaml", manifest.substr(0, cut));
    auto t = fresh_trainer();
    SCOPED_TRACE("manifest cut at byte " + std::to_string(cut) + " of " + std::to_string(manifest.size()));
    expect_one_line_naming(resume_error(*t, copy), {copy});
  }
  const std::string garbage = copy_of(ck, "garbage");
  write_text(garbage + "/manifest.yaml", "{[: not yaml\n\t\x01");
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, garbage), {garbage + "/manifest.yaml"});
}

// ---- A crafted manifest (issue 13): every shape, slice, range and file name
// is checked before anything is read, so a bad one is one line, never a crash.

// embed.weight's piece in a checkpoint of the fixture's model ([320, 32],
// stored whole by the one rank). lm_head.weight and the moments have the same
// text; the tests edit them all, and embed.weight comes first.
const std::string kEmbedPiece = "shape: [320, 32], dtype: f32, slice: [0, 320, 0, 32], range: [0, 10240]";

TEST_F(CheckpointTest, PieceOutsideItsTensorFailsWithOneLineNamingIt) {
  const std::string ck = make_checkpoint();
  // (the piece's new text, what the message must quote)
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"shape: [320, 32], dtype: f32, slice: [0, 320, 0, 32], range: [0, 20480]", "range [0, 20480]"},
      {"shape: [320, 32], dtype: f32, slice: [0, 320, 0, 32], range: [-10, 10230]", "range [-10, 10230]"},
      {"shape: [320, 32], dtype: f32, slice: [0, 320, 0, 32], range: [200, 100]", "range [200, 100]"},
      {"shape: [320, 32], dtype: f32, slice: [0, 640, 0, 32], range: [0, 20480]", "slice [0, 640, 0, 32]"},
      {"shape: [320, 32], dtype: f32, slice: [320, 320, 0, 32], range: [0, 10240]", "slice [320, 320, 0, 32]"},
      {"shape: [320, 32], dtype: f32, slice: [0, 320, 16, 32], range: [0, 10240]", "slice [0, 320, 16, 32]"},
      {"shape: [320, 32], dtype: f32, slice: [0, -320, 0, -32], range: [0, 10240]", "slice [0, -320, 0, -32]"},
      {"shape: [320, 32], dtype: f32, slice: [-320, 320, 0, 32], range: [0, 10240]", "slice [-320, 320, 0, 32]"},
      {"shape: [320, 32], dtype: f32, slice: [9223372036854775807, 320, 0, 32], range: [0, 10240]",
       "slice [9223372036854775807, 320, 0, 32]"},
      {"shape: [320, 0], dtype: f32, slice: [0, 320, 0, 0], range: [0, 0]", "shape [320, 0]"},
      {"shape: [320, -32], dtype: f32, slice: [0, 320, 0, 32], range: [0, 10240]", "shape [320, -32]"},
      {"shape: [4611686018427387904, 4], dtype: f32, slice: [0, 320, 0, 32], range: [0, 10240]",
       "shape [4611686018427387904, 4]"},
      {"shape: [320, 32, 1], dtype: f32, slice: [0, 320, 0, 32], range: [0, 10240]", "shape [320, 32, 1]"},
      {"shape: [320, 32], dtype: bf16, slice: [0, 320, 0, 32], range: [0, 10240]", "dtype bf16"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    const std::string copy = edited_copy(ck, "piece_" + std::to_string(i), kEmbedPiece, cases[i].first);
    auto t = fresh_trainer();
    expect_one_line_naming(resume_error(*t, copy), {copy + "/manifest.yaml", "embed.weight", cases[i].second});
    EXPECT_EQ(t->steps_done(), 0);
  }
}

// A range that fits its slice but not the dataset stored for it: reading the
// dataset into a buffer of the range's size would write past its end.
TEST_F(CheckpointTest, RangeDisagreeingWithItsDatasetFailsNamingBothSizes) {
  const std::string ck = make_checkpoint();
  const std::string copy = edited_copy(ck, "short_range", kEmbedPiece,
                                       "shape: [320, 32], dtype: f32, slice: [0, 320, 0, 32], range: [0, 5120]");
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, copy), {copy + "/shard_0.h5", "/param/embed.weight", "10240", "5120"});
}

// A shape that agrees with its slice, range and dataset but not with the
// model: the weights would load reshuffled without a word.
TEST_F(CheckpointTest, StoredShapeOtherThanTheModelsFailsNamingBoth) {
  const std::string ck = make_checkpoint();
  const std::string copy = edited_copy(ck, "reshaped", kEmbedPiece,
                                       "shape: [160, 64], dtype: f32, slice: [0, 160, 0, 64], range: [0, 10240]");
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, copy), {copy, "embed.weight", "[160, 64]", "[320, 32]"});
}

// Another checkpoint's shard named by a relative path, with its checksum
// entry removed or renamed alike: it must not load.
TEST_F(CheckpointTest, TensorFileOutsideTheCheckpointIsRefused) {
  const std::string ck = make_checkpoint();
  copy_of(ck, "foreign");
  const std::string other = "../../foreign/step_00000002/shard_0.h5";
  const std::string entry = files_entry(ck);
  for (const bool keep_entry : {false, true}) {
    SCOPED_TRACE(keep_entry ? "checksum entry renamed too" : "checksum entry removed");
    std::string copy = edited_copy(ck, keep_entry ? "escape_crc" : "escape", "file: shard_0.h5", "file: " + other);
    copy = edited_copy(copy, keep_entry ? "escape_crc2" : "escape2", entry,
                       keep_entry ? "  - {name: " + other + entry.substr(entry.find(',')) : "");
    auto t = fresh_trainer();
    expect_one_line_naming(resume_error(*t, copy), {copy + "/manifest.yaml", other, "plain file name"});
    EXPECT_EQ(t->steps_done(), 0);
  }
}

TEST_F(CheckpointTest, TensorFileWithoutChecksumEntryIsRefused) {
  const std::string ck = make_checkpoint();
  const std::string copy = edited_copy(ck, "no_crc", files_entry(ck), "");
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, copy), {copy + "/manifest.yaml", "shard_0.h5", "checksum entry"});
  EXPECT_EQ(t->steps_done(), 0);
}

// A files entry naming something outside the checkpoint is refused by its
// name, before its size (which the old message printed) is looked at.
TEST_F(CheckpointTest, FilesEntryNamingAPathIsRefusedByName) {
  const std::string ck = make_checkpoint();
  const std::vector<std::string> names = {"/etc/passwd", "../../../../../../../../../etc/passwd", "..", ".", "sub/shard_0.h5", "''"};
  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    const std::string copy = edited_copy(ck, "files_" + std::to_string(i), "files:\n",
                                         "files:\n  - {name: " + names[i] + ", crc32: 1, bytes: 1}\n");
    auto t = fresh_trainer();
    const std::string msg = resume_error(*t, copy);
    expect_one_line_naming(msg, {copy + "/manifest.yaml", "plain file name"});
    EXPECT_EQ(msg.find("bytes,"), std::string::npos) << "the file's size was looked at: " << msg;
  }
}

// The shard replaced by a symlink to an identical copy outside the checkpoint
// (its checksum matches): only regular files inside the directory are read.
TEST_F(CheckpointTest, SymlinkedShardIsRefused) {
  const std::string copy = copy_of(make_checkpoint(), "symlinked");
  fs::rename(copy + "/shard_0.h5", root_ + "/outside.h5");
  fs::create_symlink(root_ + "/outside.h5", copy + "/shard_0.h5");
  auto t = fresh_trainer();
  expect_one_line_naming(resume_error(*t, copy), {copy + "/shard_0.h5", "not a regular file"});
}

// How a temporary file is made: never through an existing name, a symlink
// (dangling or not) included.
TEST_F(CheckpointTest, CreateExclusiveNeverOpensAnExistingName) {
  const std::string target = root_ + "/target";
  write_text(target, "keep me");
  fs::create_symlink(target, root_ + "/link");
  fs::create_symlink(root_ + "/nothing_here", root_ + "/dangling");
  for (const std::string name : {"target", "link", "dangling"}) {
    SCOPED_TRACE(name);
    try {
      ::close(create_exclusive(root_ + "/" + name));
      ADD_FAILURE() << "create_exclusive opened an existing name";
    } catch (const Error& e) {
      expect_one_line_naming(e.what(), {root_ + "/" + name, "exists"});
    }
  }
  EXPECT_EQ(read_text(target), "keep me");
  EXPECT_FALSE(fs::exists(root_ + "/nothing_here"));
  const int fd = create_exclusive(root_ + "/fresh");
  EXPECT_EQ(::write(fd, "x", 1), 1);
  ::close(fd);
  EXPECT_EQ(read_text(root_ + "/fresh"), "x");
  try {
    ::close(create_exclusive(root_ + "/no_such_dir/f"));
    ADD_FAILURE() << "create_exclusive created a file in a missing directory";
  } catch (const Error& e) {
    expect_one_line_naming(e.what(), {root_ + "/no_such_dir/f"});
  }
}

TEST_F(CheckpointTest, KeepLastKeepsOnlyTheNewestAndLatestNamesTheLast) {
  const std::string ck = root_ + "/ck";
  make_trainer({.ck_dir = ck, .max_steps = 6, .every_steps = 2, .keep_last = 2})->run();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ck)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_00000004", "step_00000006"}));
  EXPECT_EQ(read_text(ck + "/latest"), "step_00000006\n");
  EXPECT_TRUE(fs::exists(ck + "/step_00000004/manifest.yaml"));
  EXPECT_TRUE(fs::exists(ck + "/step_00000006/manifest.yaml"));
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000006");
}

// A save that died leaves step_<N>.tmp (maybe with its manifest already
// written) or a directory without a manifest; neither may be resumed from.
TEST_F(CheckpointTest, FindLatestIgnoresUnfinishedSaves) {
  const std::string ck = root_ + "/ck";
  make_checkpoint();
  fs::create_directories(ck + "/step_00000008.tmp");
  fs::copy_file(ck + "/step_00000002/manifest.yaml", ck + "/step_00000008.tmp/manifest.yaml");
  fs::create_directories(ck + "/step_00000010");
  fs::copy_file(ck + "/step_00000002/shard_0.h5", ck + "/step_00000010/shard_0.h5");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000002");
  // Without `latest`, and with `latest` naming an unfinished save, the scan decides.
  fs::remove(ck + "/latest");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000002");
  write_text(ck + "/latest", "step_00000010\n");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000002");
  write_text(ck + "/latest", "step_00000008.tmp\n");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000002");

  auto t = make_trainer({.ck_dir = ck, .max_steps = 4});
  t->resume("auto");
  EXPECT_EQ(t->steps_done(), 2);
}

// `latest` as a symlink to a device: never read (a line of /dev/zero never
// ends), the scan decides.
TEST_F(CheckpointTest, LatestThatIsNotARegularFileIsIgnored) {
  const std::string ck = root_ + "/ck";
  make_checkpoint();
  fs::remove(ck + "/latest");
  fs::create_symlink("/dev/zero", ck + "/latest");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000002");
}

// Older versions named checkpoints step_<N> without padding: they are found
// by their number among padded ones (as text, step_2 sorts after
// step_00000004), named by `latest` or directly, and loaded.
TEST_F(CheckpointTest, UnpaddedNamesOfOlderVersionsAreFoundAndLoaded) {
  const std::string ck = root_ + "/ck";
  make_trainer({.ck_dir = ck, .max_steps = 4, .every_steps = 2})->run();
  fs::rename(ck + "/step_00000002", ck + "/step_2");
  fs::remove(ck + "/latest");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_00000004");
  auto newest = make_trainer({.ck_dir = ck, .max_steps = 6});
  newest->resume("auto");
  EXPECT_EQ(newest->steps_done(), 4);
  fs::remove_all(ck + "/step_00000004");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_2");
  write_text(ck + "/latest", "step_2\n");
  EXPECT_EQ(find_latest_checkpoint(ck), ck + "/step_2");
  auto t = make_trainer({.ck_dir = ck, .max_steps = 4});
  t->resume("auto");
  EXPECT_EQ(t->steps_done(), 2);
  auto direct = fresh_trainer();
  direct->resume(ck + "/step_2");
  EXPECT_EQ(direct->steps_done(), 2);
}

// Version-1 checkpoints counted a standard model's heads in pairs (it ran
// 2·n_heads heads of D/(2·n_heads)); read now, their config names the same
// model with the heads counted one by one. A diff model's count is unchanged.
TEST_F(CheckpointTest, Version1ConfigCountsStandardHeadsOneByOne) {
  const std::string v1 = edited_copy(make_checkpoint(), "v1", "version: 2", "version: 1");
  EXPECT_EQ(load_saved_config_text(read_manifest(v1).config_yaml, v1).model.n_heads, 2);
  std::string m = read_text(v1 + "/manifest.yaml");
  ASSERT_NE(m.find("attention: diff"), std::string::npos);
  m.replace(m.find("attention: diff"), 15, "attention: standard");
  write_text(v1 + "/manifest.yaml", m);
  const ModelConfig c = load_saved_config_text(read_manifest(v1).config_yaml, v1).model;
  EXPECT_EQ(c.attention, AttentionKind::Standard);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim(), 8);  // d_model 32 / 4: the 2 × 2 heads of 8 it ran
  // A version of the future is refused by name.
  const std::string v9 = edited_copy(v1, "v9", "version: 1", "version: 9");
  expect_one_line_naming(resume_error(*make_trainer({.ck_dir = root_ + "/ck9"}), v9), {"version 9", "not supported"});
}

TEST_F(CheckpointTest, ResumeAutoWithoutCheckpointsStartsFresh) {
  fs::create_directories(root_ + "/empty");
  for (const std::string dir : {root_ + "/empty", root_ + "/does_not_exist"}) {
    EXPECT_EQ(find_latest_checkpoint(dir), "");
    auto t = make_trainer({.ck_dir = dir});
    t->resume("auto");
    EXPECT_EQ(t->steps_done(), 0) << dir;
  }
}

}  // namespace
}  // namespace dt
