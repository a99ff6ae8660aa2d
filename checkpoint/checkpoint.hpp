// Checkpoints (DESIGN §6): <dir>/step_<N>/ holds manifest.yaml and one HDF5
// file per writing rank. Every stored piece names its tensor, the global
// slice it belongs to (rows × columns of the [out, in] tensor) and the flat
// element range of that slice it covers, never a rank, so any layout can load
// any checkpoint: the reader assembles each global tensor from its pieces and
// each rank takes its own part.
#pragma once
#include <cstdint>
#include <map>
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

// Writes pieces (with their data) to <dir>/<file>, fsyncs it and returns its checksum entry.
CheckpointFile write_checkpoint_file(const std::string& dir, const std::string& file,
                                     const std::vector<CheckpointPiece>& pieces,
                                     const std::vector<const float*>& data);

// Reads a checkpoint: verifies that every listed file is a regular file (not
// a symlink or device) of the listed size and checksum, then assembles global
// tensors from their pieces.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& dir);
  const CheckpointManifest& manifest() const { return m_; }
  const std::string& dir() const { return dir_; }
  bool has(const std::string& name, const std::string& kind) const;
  // The whole global tensor (row-major, spec.numel() elements), every element
  // covered by some piece. Fails unless every piece is stored with spec.shape
  // and its dataset holds exactly its range's elements, as 32-bit floats.
  std::vector<float> assemble(const ParamSpec& spec, const std::string& kind) const;

 private:
  std::string dir_;
  CheckpointManifest m_;
};

// "[320, 128]": a global shape (or any list of indices) for messages and tables.
std::string shape_text(const std::vector<int64_t>& shape);

// crc32 of a whole file (zlib), for the manifest's checksums.
uint32_t file_crc32(const std::string& path, int64_t* bytes = nullptr);

// N for a directory named step_<N>, else -1: step_<N>.tmp is a save that
// never finished, and at most 18 digits keep N an int64_t.
int64_t finished_step(const std::string& name);

// The newest complete checkpoint in dir (via `latest`, else the highest
// step_<N> with a manifest), or "" when there is none.
std::string find_latest_checkpoint(const std::string& dir);

}  // namespace dt
