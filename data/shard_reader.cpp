#include "data/shard_reader.hpp"

#include <cstring>
#include <filesystem>

#include "data/shard_format.hpp"

namespace dt {
namespace {

// The length of a 1-D dataset, or -1 when it is not 1-D.
int64_t length_1d(hid_t dset) {
  H5Handle space(H5Dget_space(dset), H5Sclose);
  if (!space || H5Sget_simple_extent_ndims(space.get()) != 1) return -1;
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<int64_t>(n);
}

// Unsigned integer dataset of the given byte width?
bool is_unsigned_int(hid_t dset, size_t bytes) {
  H5Handle type(H5Dget_type(dset), H5Tclose);
  return type && H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE &&
         H5Tget_size(type.get()) == bytes;
}

}  // namespace

void ShardReader::bad(const std::string& what) const {
  h5_clear_errors();
  fail("shard ", meta_.path, ": ", what);
}

ShardReader::ShardReader(const std::string& path) {
  meta_.path = path;
  h5_silence_errors();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) bad("no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) bad("not an HDF5 file");
  file_ = H5Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_) bad("cannot open as HDF5 (truncated or corrupt file?)");
  hid_t root = file_.get();

  auto format = h5_read_attr_string(root, "format");
  if (!format) bad("missing string attribute 'format' (expected \"" + std::string(kShardFormat) + "\")");
  if (*format != kShardFormat)
    bad("format attribute is \"" + *format + "\", expected \"" + kShardFormat + "\"");
  auto version = h5_read_attr_int(root, "version");
  if (!version) bad("missing integer attribute 'version'");
  if (*version != kShardVersion)
    bad("version " + std::to_string(*version) + " is not supported (expected " +
        std::to_string(kShardVersion) + ")");
  auto tokenizer = h5_read_attr_string(root, "tokenizer");
  if (!tokenizer) bad("missing string attribute 'tokenizer'");
  meta_.tokenizer = *tokenizer;
  auto need_int = [&](const char* name) {
    auto v = h5_read_attr_int(root, name);
    if (!v) bad(std::string("missing integer attribute '") + name + "'");
    if (*v < 0) bad(std::string("attribute '") + name + "' is negative (" + std::to_string(*v) + ")");
    return *v;
  };
  meta_.vocab_size = need_int("vocab_size");
  int64_t eos = need_int("eos_id");
  meta_.num_tokens = need_int("num_tokens");
  meta_.num_docs = need_int("num_docs");
  if (meta_.vocab_size < 1 || eos >= meta_.vocab_size)
    bad("eos_id " + std::to_string(eos) + " is not below vocab_size " + std::to_string(meta_.vocab_size));
  meta_.eos_id = static_cast<int32_t>(eos);

  if (H5Lexists(root, kShardTokens, H5P_DEFAULT) <= 0) bad("missing dataset /tokens");
  // No chunk cache: reads are windows at random places, and without a cache
  // HDF5 reads just the window's bytes of an (unfiltered) chunk instead of
  // the whole 64K-token chunk (14x the loader's throughput).
  H5Handle dapl(H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), path), H5Pclose);
  H5_CHECK(H5Pset_chunk_cache(dapl.get(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, H5D_CHUNK_CACHE_W0_DEFAULT), path);
  tokens_ = H5Handle(H5Dopen2(root, kShardTokens, dapl.get()), H5Dclose);
  if (!tokens_) bad("cannot open dataset /tokens");
  const bool u16 = shard_tokens_are_u16(meta_.vocab_size);
  if (!is_unsigned_int(tokens_.get(), u16 ? 2 : 4))
    bad(std::string("/tokens must be ") + (u16 ? "uint16" : "uint32") + " for vocab_size " +
        std::to_string(meta_.vocab_size));
  int64_t n = length_1d(tokens_.get());
  if (n < 0) bad("/tokens is not 1-D");
  if (n != meta_.num_tokens)
    bad("num_tokens attribute says " + std::to_string(meta_.num_tokens) + " but /tokens holds " +
        std::to_string(n) + " (truncated write?)");

  if (H5Lexists(root, kShardDocOffsets, H5P_DEFAULT) <= 0) bad("missing dataset /doc_offsets");
  H5Handle offsets(H5Dopen2(root, kShardDocOffsets, H5P_DEFAULT), H5Dclose);
  if (!offsets || !is_unsigned_int(offsets.get(), 8)) bad("/doc_offsets must be a uint64 dataset");
  if (length_1d(offsets.get()) != meta_.num_docs + 1)
    bad("/doc_offsets must hold num_docs + 1 = " + std::to_string(meta_.num_docs + 1) + " values");
  doc_offsets_.resize(meta_.num_docs + 1);
  if (H5Dread(offsets.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, doc_offsets_.data()) < 0)
    bad("cannot read /doc_offsets (corrupt file?)");
  if (doc_offsets_.front() != 0 || doc_offsets_.back() != static_cast<uint64_t>(meta_.num_tokens))
    bad("/doc_offsets must start at 0 and end at num_tokens");
  for (size_t i = 1; i < doc_offsets_.size(); ++i)
    if (doc_offsets_[i] < doc_offsets_[i - 1])
      bad("/doc_offsets decreases at document " + std::to_string(i));
}

void ShardReader::read_tokens(int64_t begin, int64_t end, int32_t* out) const {
  if (begin < 0 || end < begin || end > meta_.num_tokens)
    bad("token range [" + std::to_string(begin) + ", " + std::to_string(end) + ") is outside [0, " +
        std::to_string(meta_.num_tokens) + ")");
  if (begin == end) return;
  hsize_t start = static_cast<hsize_t>(begin), count = static_cast<hsize_t>(end - begin);
  H5Handle fspace(H5Dget_space(tokens_.get()), H5Sclose);
  H5Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  // Read the on-disk type itself: a read that converts types makes HDF5
  // allocate and clear a 1 MiB conversion buffer every call (4x slower for
  // T+1-token windows). uint16 ids land in the first half of out and are
  // widened in place, last first; uint32 ids are stored as they are (an id
  // >= 2^31 in a corrupt file reads as negative, which callers reject).
  const bool u16 = shard_tokens_are_u16(meta_.vocab_size);
  if (!fspace || !mspace ||
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr) < 0 ||
      H5Dread(tokens_.get(), u16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32, mspace.get(), fspace.get(),
              H5P_DEFAULT, out) < 0)
    bad("cannot read /tokens [" + std::to_string(begin) + ", " + std::to_string(end) +
        ") (truncated or corrupt file?)");
  if (u16) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(out);
    for (int64_t i = end - begin - 1; i >= 0; --i) {
      uint16_t id;  // bytes [2i, 2i+2) are not yet overwritten: writes so far reached only [4(i+1), ...)
      std::memcpy(&id, bytes + 2 * i, sizeof id);
      out[i] = id;
    }
  }
}

}  // namespace dt
