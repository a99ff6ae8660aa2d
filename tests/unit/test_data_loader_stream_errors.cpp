// Every way the streaming DataLoader's input can be wrong fails with a
// one-line dt::Error that names the file (or dataset) and what was expected.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "core/hdf5_util.hpp"
#include "test_data_loader_stream_util.hpp"

using dt_test::counting_doc;
using dt_test::error_of;
using dt_test::options;
using dt_test::ScratchDir;
using dt_test::Tokens;
using dt_test::write_shard;

namespace {

// The loader's error for these datasets, checked to be one line naming `names`.
std::string loader_error(const std::vector<dt::DatasetSpec>& specs, const dt::LoaderOptions& opt,
                         const std::string& names) {
  std::string err = error_of([&] { dt::DataLoader loader(specs, opt); });
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_NE(err.find(names), std::string::npos) << "error does not name " << names << ": " << err;
  return err;
}

// Opens a written shard read-write and lets f change it (HDF5 C API).
void edit_shard(const std::string& path, const std::function<void(hid_t)>& f) {
  dt::h5_silence_errors();
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  f(file);
  H5Fclose(file);
}

void set_int_attr(hid_t file, const char* name, int64_t v) {
  H5Adelete(file, name);
  dt::h5_write_attr_int(file, name, v);
}

void good_shard(const std::string& path) { write_shard(path, {counting_doc(50, 1), counting_doc(30, 100)}); }

#define EXPECT_HAS(err, text) EXPECT_NE((err).find(text), std::string::npos) << (err)

}  // namespace

TEST(DataLoaderErrors, MissingFileNamesThePath) {
  ScratchDir dir;
  std::string err = loader_error({{dir.file("nope.h5"), 1}}, options(8, 1), dir.file("nope.h5"));
  EXPECT_HAS(err, "no such file");
  err = loader_error({{dir.file("none_*.h5"), 1}}, options(8, 1), dir.file("none_*.h5"));
  EXPECT_HAS(err, "glob matches no");
}

TEST(DataLoaderErrors, TextFileNamedH5IsNotAnHdf5File) {
  ScratchDir dir;
  good_shard(dir.file("text.h5"));  // listed in the manifest, then overwritten
  std::ofstream(dir.file("text.h5")) << "just some text\n";
  std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("text.h5"));
  EXPECT_HAS(err, "not an HDF5 file");
}

TEST(DataLoaderErrors, MissingTokensDatasetIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));
  edit_shard(dir.file("s.h5"), [](hid_t f) { H5Ldelete(f, "/tokens", H5P_DEFAULT); });
  std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("s.h5"));
  EXPECT_HAS(err, "missing dataset /tokens");
}

TEST(DataLoaderErrors, WrongTokenDtypeIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));
  edit_shard(dir.file("s.h5"), [](hid_t f) {
    H5Ldelete(f, "/tokens", H5P_DEFAULT);
    hsize_t n = 82;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(f, "/tokens", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
  });
  std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("s.h5"));
  EXPECT_HAS(err, "/tokens must be uint16");
}

TEST(DataLoaderErrors, WrongFormatAttributeIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));
  edit_shard(dir.file("s.h5"), [](hid_t f) {
    H5Adelete(f, "format");
    dt::h5_write_attr_string(f, "format", "someone-elses-tokens");
  });
  std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("s.h5"));
  EXPECT_HAS(err, "format attribute is \"someone-elses-tokens\", expected \"difftron-tokens\"");
}

TEST(DataLoaderErrors, TruncatedShardIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("whole.h5"));
  std::filesystem::copy_file(dir.file("whole.h5"), dir.file("cut.h5"));
  dt::write_dataset_manifest(dir.path);
  std::filesystem::resize_file(dir.file("cut.h5"), std::filesystem::file_size(dir.file("whole.h5")) / 2);
  std::string err = loader_error({{dir.file("cut.h5"), 1}}, options(8, 1), dir.file("cut.h5"));
  EXPECT_HAS(err, "truncated");
}

TEST(DataLoaderErrors, TokenAtOrAboveModelVocabIsNamedWithItsPosition) {
  ScratchDir dir;
  // A corrupt shard: it claims vocab_size 100 but holds id 150 at token 3.
  write_shard(dir.file("bad.h5"), {{1, 2, 3, 150, 5}});
  edit_shard(dir.file("bad.h5"), [](hid_t f) { set_int_attr(f, "vocab_size", 100); });
  auto opt = options(5, 1);  // one window: the whole shard
  opt.model_vocab_size = 100;
  dt::DataLoader loader({{dir.file("bad.h5"), 1}}, opt);
  Tokens batch(6);
  std::string err = error_of([&] { loader.next(batch.data()); });
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_HAS(err, dir.file("bad.h5"));
  EXPECT_HAS(err, "token at position 3 is 150, expected below 100");
  // The failure stays until restore(): the next call reports it again.
  EXPECT_EQ(error_of([&] { loader.next(batch.data()); }), err);
}

TEST(DataLoaderErrors, BadWindowFailsOnlyWhereItIsReadAndRestorePastItRecovers) {
  ScratchDir dir;
  // 41 windows of T=4 tokens (165 with EOS); the id 4000 at token 77 lies in window 19 only.
  Tokens doc = counting_doc(164, 1);
  doc[77] = 4000;
  write_shard(dir.file("s.h5"), {doc});
  edit_shard(dir.file("s.h5"), [](hid_t f) { set_int_attr(f, "vocab_size", 1000); });
  dt::DataLoader loader({{dir.path, 1}}, options(4, 1));
  Tokens batch(5);
  int64_t failed_at = -1;
  for (int i = 0; i < 41 && failed_at < 0; ++i) {
    std::string err = error_of([&] { loader.next(batch.data()); });
    if (err != "(no error)") {
      EXPECT_HAS(err, "position 77 is 4000");
      failed_at = loader.state();
    }
  }
  ASSERT_GE(failed_at, 0) << "the bad window was never read";
  loader.restore(failed_at + 1);  // skip the bad sample: the rest of the epoch reads fine
  for (int64_t i = failed_at + 1; i < 41; ++i) EXPECT_EQ(error_of([&] { loader.next(batch.data()); }), "(no error)");
}

TEST(DataLoaderErrors, TokenizerOtherThanTheConfigsIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));
  auto opt = options(8, 1);
  opt.tokenizer = "byte";
  std::string err = loader_error({{dir.path, 1}}, opt, dir.file("s.h5"));
  EXPECT_HAS(err, "tokenizer is \"test\", expected \"byte\"");
  opt.tokenizer = "test";
  EXPECT_EQ(error_of([&] { dt::DataLoader ok({{dir.path, 1}}, opt); }), "(no error)");
}

TEST(DataLoaderErrors, ShardVocabAboveTheModelsIsAnErrorBelowIsFine) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));  // vocab_size 5000
  auto opt = options(8, 1);
  opt.model_vocab_size = 4096;
  std::string err = loader_error({{dir.path, 1}}, opt, dir.file("s.h5"));
  EXPECT_HAS(err, "vocab_size 5000 is larger than the model's vocab_size 4096");
  opt.model_vocab_size = 5120;  // padded model vocabulary
  EXPECT_EQ(error_of([&] { dt::DataLoader ok({{dir.path, 1}}, opt); }), "(no error)");
}

TEST(DataLoaderErrors, EmptyDatasetIsNamed) {
  ScratchDir dir;
  write_shard(dir.file("empty.h5"), {});
  std::string err = loader_error({{dir.file("empty.h5"), 1}}, options(8, 1), dir.file("empty.h5"));
  EXPECT_HAS(err, "empty dataset");
  std::filesystem::create_directory(dir.file("nothing"));
  err = loader_error({{dir.file("nothing"), 1}}, options(8, 1), dir.file("nothing"));
  EXPECT_HAS(err, "no '*.h5' files");
}

TEST(DataLoaderErrors, SeqLenLongerThanEveryShardIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));  // 82 tokens
  std::string err = loader_error({{dir.path, 1}}, options(100, 1), dir.path);
  EXPECT_HAS(err, "no shard holds seq_len+1 = 101 tokens (longest shard has 82)");
}

TEST(DataLoaderErrors, ShardsWithDifferentTokenizersAreNamed) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));
  write_shard(dir.file("b.h5"), {counting_doc(50, 1)}, 5000, 0, "other");
  std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("b.h5"));
  EXPECT_HAS(err, "tokenizer \"other\"");
  EXPECT_HAS(err, dir.file("a.h5"));
  // Across datasets too: one blend, one vocabulary.
  std::filesystem::create_directory(dir.file("x"));
  std::filesystem::rename(dir.file("b.h5"), dir.file("x/b.h5"));
  dt::write_dataset_manifest(dir.file("x"));
  loader_error({{dir.file("a.h5"), 1}, {dir.file("x"), 1}}, options(8, 1), dir.file("x/b.h5"));
}

TEST(DataLoaderErrors, WeightsMustBePositive) {
  ScratchDir dir;
  good_shard(dir.file("s.h5"));
  for (double w : {0.0, -1.0}) {
    std::string err = loader_error({{dir.file("s.h5"), 1}, {dir.path, w}}, options(8, 1), dir.path);
    EXPECT_HAS(err, "must be a finite number > 0");
  }
}

TEST(DataLoaderErrors, NoDatasetsIsAnError) {
  std::string err = error_of([] { dt::DataLoader loader({}, options(8, 1)); });
  EXPECT_HAS(err, "no datasets");
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

// The dataset manifest (data/dataset_manifest.hpp) vouches for a directory:
// without it the shards are what an interrupted prepare left, however complete
// they look, and the loader refuses them rather than train on part of the data.
TEST(DataLoaderErrors, DirectoryWithoutManifestIsAnIncompleteDataset) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));
  std::filesystem::remove(dir.file(dt::kDatasetManifest));
  for (const std::string& spec : {dir.path, dir.file("a.h5"), dir.file("*.h5")}) {
    const std::string err = loader_error({{spec, 1}}, options(8, 1), "dataset " + spec + ": incomplete dataset (no " +
                                                                        dir.file(dt::kDatasetManifest));
    EXPECT_HAS(err, "re-run difftron prepare");
  }
}

TEST(DataLoaderErrors, ShardTheManifestDoesNotListIsRefused) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));
  dt::ShardWriter w(dir.file("b.h5"), "test", 5000, 0);  // after the manifest: not part of the dataset
  w.add_document(counting_doc(50, 1));
  w.close();
  const std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("b.h5"));
  EXPECT_HAS(err, "is not listed in " + dir.file(dt::kDatasetManifest));
}

TEST(DataLoaderErrors, ListedShardThatIsMissingIsRefused) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));
  good_shard(dir.file("b.h5"));
  std::filesystem::remove(dir.file("b.h5"));  // an unfinished copy of the dataset
  const std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file(dt::kDatasetManifest));
  EXPECT_HAS(err, "incomplete dataset");
  EXPECT_HAS(err, "lists b.h5, which is missing");
  // A single listed file of the directory is still a dataset of its own.
  EXPECT_EQ(error_of([&] { dt::DataLoader ok({{dir.file("a.h5"), 1}}, options(8, 1)); }), "(no error)");
}

TEST(DataLoaderErrors, ShardWithOtherTokensThanTheManifestListsIsRefused) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));  // 82 tokens
  dt::ShardWriter w(dir.file("a.h5"), "test", 5000, 0);  // replaced behind the manifest's back
  w.add_document(counting_doc(60, 1));
  w.close();
  const std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file("a.h5"));
  EXPECT_HAS(err, "holds 61 tokens but its dataset manifest lists 82");
}

TEST(DataLoaderErrors, MalformedManifestIsNamed) {
  ScratchDir dir;
  good_shard(dir.file("a.h5"));
  std::ofstream(dir.file(dt::kDatasetManifest)) << "format: difftron-dataset\nversion: 1\nshards: [{file: a.h5}]\n";
  const std::string err = loader_error({{dir.path, 1}}, options(8, 1), dir.file(dt::kDatasetManifest));
  EXPECT_HAS(err, "malformed dataset manifest");
}
