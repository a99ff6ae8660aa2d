#include "data/shard_writer.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/files.hpp"
#include "data/shard_format.hpp"

namespace dt {

ShardWriter::ShardWriter(const std::string& path, const std::string& tokenizer, int64_t vocab_size,
                         int32_t eos_id)
    : path_(path),
      tokenizer_(tokenizer),
      vocab_size_(vocab_size),
      eos_id_(eos_id),
      u16_(shard_tokens_are_u16(vocab_size)),
      doc_offsets_{0} {
  // Ids are int32 everywhere else, so the largest vocabulary is 2^31.
  if (vocab_size <= 0 || vocab_size > (int64_t(1) << 31))
    fail(path, ": vocab_size ", vocab_size, " out of range (expected 1..2^31)");
  if (eos_id < 0 || eos_id >= vocab_size)
    fail(path, ": eos_id ", eos_id, " out of range (expected 0..", vocab_size - 1, ")");
  h5_silence_errors();
  const std::string tmp = tmp_path();
  // An output directory that cannot be written is the user's to fix: say so, naming the
  // file, before HDF5 tries (a failed H5Fcreate also leaves HDF5 unable to close at exit).
  if (FILE* probe = std::fopen(tmp.c_str(), "wb")) std::fclose(probe);
  else fail(tmp, ": cannot create the shard file (", std::strerror(errno), "); expected a writable output directory");
  const std::string hint = "creating shard " + tmp;
  file_ = H5Handle(H5_CHECK(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), hint),
                   H5Fclose);
  // /tokens: 1-D, starts empty, grows without limit in whole chunks.
  hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = kShardChunkTokens;
  H5Handle space(H5_CHECK(H5Screate_simple(1, &dims, &maxdims), hint), H5Sclose);
  H5Handle dcpl(H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), hint), H5Pclose);
  H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &chunk), hint);
  tokens_ = H5Handle(H5_CHECK(H5Dcreate2(file_.get(), kShardTokens, u16_ ? H5T_STD_U16LE : H5T_STD_U32LE,
                                         space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                              hint),
                     H5Dclose);
  buffer_.reserve(kShardChunkTokens);
}

ShardWriter::~ShardWriter() {
  if (closed_) return;
  // Abandoned (an exception on the way): drop the partial file.
  tokens_.reset();
  file_.reset();
  std::remove(tmp_path().c_str());
}

void ShardWriter::add_document(std::span<const int32_t> tokens) {
  DT_CHECK(!closed_, "add_document after close on ", path_);
  for (int32_t id : tokens)
    if (id < 0 || id >= vocab_size_)
      fail(path_, ": token id ", id, " out of range (expected 0..", vocab_size_ - 1, ")");
  append(tokens);
  const int32_t eos = eos_id_;
  append(std::span<const int32_t>(&eos, 1));
  doc_offsets_.push_back(static_cast<uint64_t>(num_tokens_));
}

void ShardWriter::append(std::span<const int32_t> tokens) {
  for (int32_t id : tokens) {
    buffer_.push_back(static_cast<uint32_t>(id));
    if (buffer_.size() == static_cast<size_t>(kShardChunkTokens)) flush_buffer();
  }
  num_tokens_ += static_cast<int64_t>(tokens.size());
}

// Extends /tokens by the buffered tokens and writes them at its end.
void ShardWriter::flush_buffer() {
  if (buffer_.empty()) return;
  const std::string hint = "writing /tokens of " + tmp_path() + "; is the disk full?";
  hsize_t start = static_cast<hsize_t>(written_), count = buffer_.size();
  hsize_t new_size = start + count;
  H5_CHECK(H5Dset_extent(tokens_.get(), &new_size), hint);
  H5Handle fspace(H5_CHECK(H5Dget_space(tokens_.get()), hint), H5Sclose);
  H5_CHECK(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), hint);
  H5Handle mspace(H5_CHECK(H5Screate_simple(1, &count, nullptr), hint), H5Sclose);
  // The library converts uint32 in memory to the file's uint16 or uint32.
  H5_CHECK(H5Dwrite(tokens_.get(), H5T_NATIVE_UINT32, mspace.get(), fspace.get(), H5P_DEFAULT,
                    buffer_.data()),
           hint);
  written_ += static_cast<int64_t>(count);
  buffer_.clear();
}

void ShardWriter::close() {
  DT_CHECK(!closed_, "close called twice on ", path_);
  const std::string tmp = tmp_path();
  const std::string hint = "finishing shard " + tmp + "; is the disk full?";
  flush_buffer();
  DT_CHECK(written_ == num_tokens_);

  hsize_t n = doc_offsets_.size();
  H5Handle space(H5_CHECK(H5Screate_simple(1, &n, nullptr), hint), H5Sclose);
  H5Handle offsets(H5_CHECK(H5Dcreate2(file_.get(), kShardDocOffsets, H5T_STD_U64LE, space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                            hint),
                   H5Dclose);
  H5_CHECK(H5Dwrite(offsets.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, doc_offsets_.data()),
           hint);
  offsets.reset();

  hid_t root = file_.get();
  h5_write_attr_string(root, "format", kShardFormat);
  h5_write_attr_int(root, "version", kShardVersion);
  h5_write_attr_string(root, "tokenizer", tokenizer_);
  h5_write_attr_int(root, "vocab_size", vocab_size_);
  h5_write_attr_int(root, "eos_id", eos_id_);
  h5_write_attr_int(root, "num_tokens", num_tokens_);
  h5_write_attr_int(root, "num_docs", num_docs());

  H5_CHECK(tokens_.reset(), hint);
  H5_CHECK(file_.reset(), hint);
  fsync_file(tmp);
  if (std::rename(tmp.c_str(), path_.c_str()) != 0)
    fail(tmp, ": cannot rename to ", path_, ": ", std::strerror(errno));
  closed_ = true;
  fsync_dir(std::filesystem::path(path_).parent_path().string());
}

}  // namespace dt
