// CheckpointReader (checkpoint/checkpoint.hpp): a rank's part of each global
// tensor from the pieces that overlap it, each piece checked as it is read.
#include <hdf5.h>

#include <algorithm>
#include <filesystem>

#include "core/hdf5_util.hpp"
#include "checkpoint/checkpoint.hpp"

namespace dt {

namespace fs = std::filesystem;

CheckpointReader::CheckpointReader(const std::string& dir, Verify verify)
    : dir_(dir), verify_(verify), m_(read_manifest(dir)) {
  for (size_t i = 0; i < m_.pieces.size(); ++i) index_[{m_.pieces[i].name, m_.pieces[i].kind}].push_back(i);
  if (verify_ == Verify::every_file)
    for (const CheckpointFile& f : m_.files) check_file(f.name);
}

// Once per file: a regular file (not followed: a symlink may point anywhere,
// and a device may never end) of the listed size; its crc32 too when every
// file is verified or a piece in it has no checksum of its own.
void CheckpointReader::check_file(const std::string& name) const {
  if (!checked_files_.insert(name).second) return;
  const auto f = std::find_if(m_.files.begin(), m_.files.end(), [&](const CheckpointFile& c) { return c.name == name; });
  DT_CHECK(f != m_.files.end(), name, " has no checksum entry (read_manifest checks that)");
  const std::string path = dir_ + "/" + name;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (!fs::exists(st)) fail("checkpoint file ", path, ": missing (listed in the manifest)");
  if (!fs::is_regular_file(st))
    fail("checkpoint file ", path, ": not a regular file (a symlink, device or directory); expected the file itself");
  const bool whole = verify_ == Verify::every_file ||
                     std::any_of(m_.pieces.begin(), m_.pieces.end(),
                                 [&](const CheckpointPiece& p) { return p.file == name && !p.has_crc32; });
  int64_t bytes = int64_t(fs::file_size(path, ec));
  uint32_t crc = f->crc32;
  if (whole) {
    crc = file_crc32(path, &bytes);
    bytes_read_ += bytes;
  }
  if (ec || bytes != f->bytes)
    fail("checkpoint file ", path, ": ", bytes, " bytes, expected ", f->bytes, " (truncated or overwritten)");
  if (crc != f->crc32) fail("checkpoint file ", path, ": checksum mismatch (corrupt); expected crc32 ", f->crc32);
}

bool CheckpointReader::has(const std::string& name, const std::string& kind) const {
  return index_.count({name, kind}) > 0;
}

std::vector<float> CheckpointReader::assemble(const ParamSpec& spec, const std::string& kind) const {
  const TpSlice whole{0, spec.shape[0], 0, spec.shape.size() == 2 ? spec.shape[1] : 1};
  std::vector<float> out(size_t(whole.numel()));
  read(spec, kind, whole, 0, whole.numel(), out.data());
  return out;
}

namespace {

// Global rows [first, end) that elements [f0, f1) (f0 < f1) of a slice touch.
std::pair<int64_t, int64_t> rows_touched(const TpSlice& s, int64_t f0, int64_t f1) {
  return {s.row0 + f0 / s.cols, s.row0 + (f1 + s.cols - 1) / s.cols};
}

}  // namespace

void CheckpointReader::read(const ParamSpec& spec, const std::string& kind, const TpSlice& want, int64_t j0,
                            int64_t j1, float* out) const {
  h5_silence_errors();
  DT_CHECK(0 <= j0 && j0 <= j1 && j1 <= want.numel(), "range ", j0, "..", j1, " of a slice of ", want.numel());
  const int64_t full_cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
  std::vector<bool> covered(size_t(j1 - j0), false);
  const auto stored = index_.find({spec.name, kind});
  if (stored == index_.end()) fail("checkpoint ", dir_, ": no ", kind, " stored for tensor ", spec.name);
  std::vector<float> buf;
  for (const size_t k : stored->second) {
    const CheckpointPiece& p = m_.pieces[k];
    // read_manifest put the slice and range inside p.shape; equal to
    // spec.shape, every global index below lands inside the tensor.
    if (p.shape != spec.shape)
      fail("checkpoint ", dir_, ": ", kind, " of ", spec.name, " is stored with shape ", shape_text(p.shape),
           ", expected ", shape_text(spec.shape));
    // Pieces whose rows or columns miss the wanted ones are not read.
    if (p.f0 == p.f1 || j0 == j1) continue;
    const auto [pr0, pr1] = rows_touched(p.slice, p.f0, p.f1);
    const auto [wr0, wr1] = rows_touched(want, j0, j1);
    if (pr1 <= wr0 || wr1 <= pr0 || p.slice.col0 + p.slice.cols <= want.col0 ||
        want.col0 + want.cols <= p.slice.col0)
      continue;
    check_file(p.file);
    const std::string path = dir_ + "/" + p.file;
    H5Handle f(H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "cannot open " + path), H5Fclose);
    const std::string ds = "/" + kind + "/" + spec.name;
    if (H5Lexists(f.get(), kind.c_str(), H5P_DEFAULT) <= 0 || H5Lexists(f.get(), ds.c_str(), H5P_DEFAULT) <= 0)
      fail("checkpoint file ", path, ": dataset ", ds, " missing");
    H5Handle d(H5_CHECK(H5Dopen2(f.get(), ds.c_str(), H5P_DEFAULT), path), H5Dclose);
    // The whole dataset is read into buf (its checksum covers all of it): it
    // must hold exactly the range.
    H5Handle type(H5_CHECK(H5Dget_type(d.get()), path), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != sizeof(float))
      fail("checkpoint file ", path, ": dataset ", ds, " is not 32-bit float (the manifest says f32)");
    H5Handle space(H5_CHECK(H5Dget_space(d.get()), path), H5Sclose);
    const int64_t n = H5_CHECK(H5Sget_simple_extent_npoints(space.get()), path);
    if (n != p.f1 - p.f0)
      fail("checkpoint file ", path, ": dataset ", ds, " holds ", n, " elements, but its manifest range ",
           shape_text({p.f0, p.f1}), " has ", p.f1 - p.f0);
    buf.resize(size_t(n));
    H5_CHECK(H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read " + ds + " in " + path);
    bytes_read_ += n * int64_t(sizeof(float));
    if (p.has_crc32 && float_crc32(buf.data(), n) != p.crc32)
      fail("checkpoint file ", path, ": dataset ", ds, " checksum mismatch (corrupt); expected crc32 ", p.crc32);
    // Each stored element that falls in the wanted slice and range.
    for (int64_t i = p.f0; i < p.f1; ++i) {
      const int64_t g = global_index(spec, p.slice, i);
      const int64_t r = g / full_cols - want.row0, c = g % full_cols - want.col0;
      if (r < 0 || r >= want.rows || c < 0 || c >= want.cols) continue;
      const int64_t j = r * want.cols + c;
      if (j < j0 || j >= j1) continue;
      out[j - j0] = buf[size_t(i - p.f0)];
      covered[size_t(j - j0)] = true;
    }
  }
  if (std::find(covered.begin(), covered.end(), false) != covered.end())
    fail("checkpoint ", dir_, ": ", kind, " of ", spec.name, " is not fully covered by its pieces");
}

}  // namespace dt
