// Checkpoints (DESIGN §6): <dir>/step_<N>/ (N zero-padded to 8 digits,
// step_00000200) holds manifest.yaml and one HDF5 file per writing rank.
// Every stored piece names its tensor, the global slice it belongs to (rows ×
// columns of the [out, in] tensor), the flat element range of that slice it
// covers and the crc32 of its values, never a rank, so any layout can load
// any checkpoint: each rank reads the pieces that overlap its own part.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/files.hpp"
#include "model/registry.hpp"

namespace dt {

// What one rank stores: kind is "param", "exp_avg" or "exp_avg_sq".
struct CheckpointPiece {
  std::string name, kind;
  std::vector<int64_t> shape;  // global shape
  TpSlice slice;               // the tensor-parallel slice the data belongs to
  int64_t f0 = 0, f1 = 0;      // flat element range within that slice (row-major)
  std::string file;            // HDF5 file in the checkpoint directory; dataset /<kind>/<name>
  // crc32 of the piece's f32 values (f1 − f0 little-endian floats), so a
  // rank that reads only its pieces checks exactly what it reads. Absent in
  // checkpoints written before it; their files are checked whole.
  bool has_crc32 = false;
  uint32_t crc32 = 0;
};

struct CheckpointFile {
  std::string name;
  uint32_t crc32 = 0;
  int64_t bytes = 0;
};

struct CheckpointManifest {
  int64_t step = 0;          // optimizer steps done
  int64_t tokens_seen = 0;
  int64_t data_state = 0;    // global samples consumed by the loader
  int64_t total_steps = 0;   // of the schedule it was saved under
  uint64_t seed = 0;         // the run's RNG seed (every random stream is a pure function of it)
  int tp = 1, pp = 1, dp = 1, zero = 0;
  std::string config_yaml;   // the full config of the run
  std::vector<CheckpointFile> files;
  std::vector<CheckpointPiece> pieces;
};

std::string manifest_to_yaml(const CheckpointManifest& m);
// Parses <dir>/manifest.yaml and checks it as untrusted input; one-line errors
// name the file and what is wrong. Every file name (files[].name,
// tensors[].file) is a plain name inside <dir> and every file a tensor is in
// has a checksum entry; every piece has dtype f32, a 1-D or 2-D shape of
// positive sizes, a slice inside that shape and a range inside that slice.
CheckpointManifest read_manifest(const std::string& dir);

// The manifest's `files` and `tensors` sections alone, in the manifest's own
// YAML: what one rank wrote at a save, sent to rank 0, which appends every
// rank's to the manifest (checked as read_manifest checks them; `where`
// names the source in messages).
std::string entries_to_yaml(const std::vector<CheckpointFile>& files, const std::vector<CheckpointPiece>& pieces);
void append_entries(const std::string& yaml, const std::string& where, CheckpointManifest& m);

// Writes pieces (with their data) to <dir>/<file>, fsyncs it and returns its
// checksum entry; sets each piece's crc32.
CheckpointFile write_checkpoint_file(const std::string& dir, const std::string& file,
                                     std::vector<CheckpointPiece>& pieces, const std::vector<const float*>& data);

// How much of a checkpoint a reader checks. every_file: each listed file's
// type, size and crc32 when it is opened (inspect, export and eval read the
// whole model anyway). what_is_read: only the manifest when it is opened,
// then each file's type and size when a piece of it is first read and each
// piece's crc32 as it is read (a file whose pieces have none: its crc32),
// so a rank of a large run reads only its own pieces (Trainer; it agrees on
// the verdict across ranks).
enum class Verify { every_file, what_is_read };

// Reads a checkpoint and assembles global tensors, or any rank's part of
// them, from the pieces that overlap it.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& dir, Verify verify = Verify::every_file);
  const CheckpointManifest& manifest() const { return m_; }
  const std::string& dir() const { return dir_; }
  bool has(const std::string& name, const std::string& kind) const;
  // The whole global tensor (row-major, spec.numel() elements).
  std::vector<float> assemble(const ParamSpec& spec, const std::string& kind) const;
  // Elements [j0, j1) of `slice` of the global tensor (row-major within the
  // slice) into out (j1 − j0 elements), reading only the pieces that overlap
  // them. Fails unless every element is covered by some piece, every piece
  // read is stored with spec.shape, its dataset holds exactly its range's
  // elements as 32-bit floats, and its checksum matches.
  void read(const ParamSpec& spec, const std::string& kind, const TpSlice& slice, int64_t j0, int64_t j1,
            float* out) const;
  // Bytes of tensor data and checksummed files read so far (HDF5's own
  // metadata reads not included).
  int64_t bytes_read() const { return bytes_read_; }

 private:
  void check_file(const std::string& name) const;
  std::string dir_;
  Verify verify_;
  CheckpointManifest m_;
  // (name, kind) → indices of its pieces in m_.pieces.
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> index_;
  mutable std::set<std::string> checked_files_;
  mutable int64_t bytes_read_ = 0;
};

// "[320, 128]": a global shape (or any list of indices) for messages and tables.
std::string shape_text(const std::vector<int64_t>& shape);

// crc32 of a whole file (zlib), for the manifest's checksums.
uint32_t file_crc32(const std::string& path, int64_t* bytes = nullptr);
// crc32 of n floats as stored (a piece's checksum).
uint32_t float_crc32(const float* data, int64_t n);

// The directory name of the checkpoint of `step`: step_ and 8 digits
// (step_00000200), more when the step needs them, so names sort by step.
std::string checkpoint_dir_name(int64_t step);

// N for a directory named step_<N> (zero-padded or not: step_00000200 and the
// older step_200 alike), else -1: step_<N>.tmp is a save that never finished,
// and at most 18 digits keep N an int64_t.
int64_t finished_step(const std::string& name);

// The newest complete checkpoint in dir (via `latest`, else the highest
// step_<N> with a manifest), or "" when there is none.
std::string find_latest_checkpoint(const std::string& dir);

}  // namespace dt
