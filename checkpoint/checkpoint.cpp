#include "checkpoint/checkpoint.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "core/hdf5_util.hpp"

namespace dt {

namespace fs = std::filesystem;

static const char* kFormat = "difftron-checkpoint";
// Version 2: model.n_heads / n_kv_heads of `attention: standard` count its
// heads; version 1 counted them in pairs (2·n_heads heads of D/(2·n_heads)).
static constexpr int kVersion = 2;

namespace {

// A version-1 config as version 2 reads it: the same model, so a standard run's
// head counts double (parameter shapes and the function are unchanged).
std::string config_of_version_1(const std::string& yaml) {
  YAML::Node root = YAML::Load(yaml);
  YAML::Node model = root["model"];
  if (!model.IsMap() || !model["attention"] || model["attention"].as<std::string>() != "standard") return yaml;
  for (const char* key : {"n_heads", "n_kv_heads"})
    if (model[key]) model[key] = 2 * model[key].as<int64_t>();
  YAML::Emitter e;
  e << root;
  return e.c_str();
}

}  // namespace

uint32_t float_crc32(const float* data, int64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef* p = reinterpret_cast<const Bytef*>(data);
  // zlib takes at most 4 GiB a call.
  for (int64_t left = n * int64_t(sizeof(float)); left > 0;) {
    const uInt chunk = uInt(std::min<int64_t>(left, int64_t(1) << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return uint32_t(crc);
}

uint32_t file_crc32(const std::string& path, int64_t* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("checkpoint file ", path, ": missing or unreadable");
  std::vector<char> buf(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  int64_t total = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const std::streamsize n = in.gcount();
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), uInt(n));
    total += n;
  }
  if (bytes) *bytes = total;
  return uint32_t(crc);
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

CheckpointFile write_checkpoint_file(const std::string& dir, const std::string& file,
                                     std::vector<CheckpointPiece>& pieces, const std::vector<const float*>& data) {
  h5_silence_errors();
  const std::string path = dir + "/" + file;
  {
    H5Handle f(H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "cannot create " + path),
               H5Fclose);
    std::set<std::string> groups;
    for (size_t i = 0; i < pieces.size(); ++i) {
      CheckpointPiece& p = pieces[i];
      if (groups.insert(p.kind).second)
        H5Handle(H5_CHECK(H5Gcreate2(f.get(), p.kind.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path), H5Gclose);
      const std::string ds = "/" + p.kind + "/" + p.name;
      const hsize_t n = hsize_t(p.f1 - p.f0);
      H5Handle space(H5_CHECK(H5Screate_simple(1, &n, nullptr), path), H5Sclose);
      H5Handle d(H5_CHECK(H5Dcreate2(f.get(), ds.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT),
                          "cannot create " + ds + " in " + path),
                 H5Dclose);
      H5_CHECK(H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data[i]), "write " + path);
      p.has_crc32 = true;
      p.crc32 = float_crc32(data[i], p.f1 - p.f0);
    }
    if (f.reset() < 0) fail("cannot close ", path, " (disk full?)");
  }
  fsync_file(path);
  CheckpointFile cf;
  cf.name = file;
  cf.crc32 = file_crc32(path, &cf.bytes);
  return cf;
}

namespace {

// The files and tensors sections, as a manifest and a rank's entries hold them.
void emit_entries(YAML::Emitter& e, const std::vector<CheckpointFile>& files,
                  const std::vector<CheckpointPiece>& pieces) {
  e << YAML::Key << "files" << YAML::Value << YAML::BeginSeq;
  for (const CheckpointFile& f : files)
    e << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << f.name << YAML::Key << "crc32"
      << YAML::Value << f.crc32 << YAML::Key << "bytes" << YAML::Value << f.bytes << YAML::EndMap;
  e << YAML::EndSeq;
  e << YAML::Key << "tensors" << YAML::Value << YAML::BeginSeq;
  for (const CheckpointPiece& p : pieces) {
    e << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "kind"
      << YAML::Value << p.kind << YAML::Key << "shape" << YAML::Value << YAML::Flow << p.shape << YAML::Key << "dtype"
      << YAML::Value << "f32" << YAML::Key << "slice" << YAML::Value << YAML::Flow
      << std::vector<int64_t>{p.slice.row0, p.slice.rows, p.slice.col0, p.slice.cols} << YAML::Key << "range"
      << YAML::Value << YAML::Flow << std::vector<int64_t>{p.f0, p.f1} << YAML::Key << "file" << YAML::Value
      << p.file;
    if (p.has_crc32) e << YAML::Key << "crc32" << YAML::Value << p.crc32;
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
}

}  // namespace

std::string manifest_to_yaml(const CheckpointManifest& m) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << kFormat;
  e << YAML::Key << "version" << YAML::Value << kVersion;
  e << YAML::Key << "step" << YAML::Value << m.step;
  e << YAML::Key << "tokens_seen" << YAML::Value << m.tokens_seen;
  e << YAML::Key << "data_state" << YAML::Value << m.data_state << YAML::Comment("global samples consumed");
  e << YAML::Key << "schedule" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "step" << YAML::Value
    << m.step << YAML::Key << "total_steps" << YAML::Value << m.total_steps << YAML::EndMap;
  e << YAML::Key << "rng" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "seed" << YAML::Value
    << m.seed << YAML::EndMap;
  e << YAML::Key << "layout" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "tp" << YAML::Value
    << m.tp << YAML::Key << "pp" << YAML::Value << m.pp << YAML::Key << "dp" << YAML::Value << m.dp << YAML::Key
    << "zero" << YAML::Value << m.zero << YAML::EndMap;
  e << YAML::Key << "config" << YAML::Value << YAML::Literal << m.config_yaml;
  emit_entries(e, m.files, m.pieces);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string entries_to_yaml(const std::vector<CheckpointFile>& files, const std::vector<CheckpointPiece>& pieces) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  emit_entries(e, files, pieces);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

namespace {

// A name in a manifest must not reach outside the checkpoint directory.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find_first_of(std::string("/\0", 2)) == std::string::npos;
}

// The piece must describe part of a tensor before any index is computed from
// it: a 1-D or 2-D shape of positive sizes whose element count fits int64_t,
// a slice (rows × columns) inside the shape and a flat range inside the slice.
void check_piece(const std::string& path, const CheckpointPiece& p, const std::string& dtype) {
  const std::string what = path + ": tensor " + p.name + " (" + p.kind + ")";
  if (dtype != "f32") fail(what, ": dtype ", dtype, " is not supported; expected f32");
  const std::vector<int64_t>& s = p.shape;
  if (s.empty() || s.size() > 2 || s[0] <= 0 || s.back() <= 0)
    fail(what, ": shape ", shape_text(s), " is not a 1-D or 2-D shape of positive sizes");
  if (s.size() == 2 && s[0] > std::numeric_limits<int64_t>::max() / s[1])
    fail(what, ": shape ", shape_text(s), " has more elements than an int64 can count");
  const int64_t rows = s[0], cols = s.size() == 2 ? s[1] : 1;
  const TpSlice& sl = p.slice;
  if (sl.row0 < 0 || sl.rows < 0 || sl.row0 > rows - sl.rows || sl.col0 < 0 || sl.cols < 0 ||
      sl.col0 > cols - sl.cols)
    fail(what, ": slice ", shape_text({sl.row0, sl.rows, sl.col0, sl.cols}), " (row0, rows, col0, cols) is not inside ",
         "its shape ", shape_text(s), "; expected rows within [0, ", rows, "] and columns within [0, ", cols, "]");
  if (p.f0 < 0 || p.f0 > p.f1 || p.f1 > sl.numel())
    fail(what, ": range ", shape_text({p.f0, p.f1}), " is not inside its slice of ", sl.numel(),
         " elements; expected 0 <= begin <= end <= ", sl.numel());
}

// Appends the files and tensors of a manifest (or of one rank's entries)
// to m, checked as untrusted input; `path` names the source in messages.
void parse_entries(const YAML::Node& n, const std::string& path, CheckpointManifest& m) {
  std::set<std::string> checked;  // the files with a checksum entry
  for (const CheckpointFile& f : m.files) checked.insert(f.name);
  for (const YAML::Node& f : n["files"]) {
    m.files.push_back({f["name"].as<std::string>(), f["crc32"].as<uint32_t>(), f["bytes"].as<int64_t>()});
    const std::string& name = m.files.back().name;
    if (!is_plain_file_name(name))
      fail(path, ": file '", name, "' is not a plain file name in the checkpoint directory "
           "(expected a name without '/', not '.' or '..')");
    checked.insert(name);
  }
  for (const YAML::Node& t : n["tensors"]) {
    CheckpointPiece p;
    p.name = t["name"].as<std::string>();
    p.kind = t["kind"].as<std::string>();
    p.shape = t["shape"].as<std::vector<int64_t>>();
    const auto s = t["slice"].as<std::vector<int64_t>>();
    const auto r = t["range"].as<std::vector<int64_t>>();
    if (s.size() != 4 || r.size() != 2) fail(path, ": tensor ", p.name, " has a malformed slice or range");
    p.slice = {s[0], s[1], s[2], s[3]};
    p.f0 = r[0];
    p.f1 = r[1];
    p.file = t["file"].as<std::string>();
    if (!is_plain_file_name(p.file))
      fail(path, ": tensor ", p.name, " is in file '", p.file, "', not a plain file name in the checkpoint "
           "directory (expected a name without '/', not '.' or '..')");
    if (!checked.count(p.file))
      fail(path, ": tensor ", p.name, " is in ", p.file, ", which has no checksum entry under files "
           "(every file read is verified first)");
    if (t["crc32"]) {
      p.has_crc32 = true;
      p.crc32 = t["crc32"].as<uint32_t>();
    }
    check_piece(path, p, t["dtype"].as<std::string>());
    m.pieces.push_back(std::move(p));
  }
}

}  // namespace

void append_entries(const std::string& yaml, const std::string& where, CheckpointManifest& m) {
  try {
    parse_entries(YAML::Load(yaml), where, m);
  } catch (const YAML::Exception& e) {
    fail(where, ": malformed checkpoint entries (", e.msg, ")");
  }
}

CheckpointManifest read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.yaml";
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (!fs::exists(st)) fail("checkpoint ", dir, ": no manifest.yaml (not a complete checkpoint)");
  if (!fs::is_regular_file(st)) fail(path, ": not a regular file (a symlink, device or directory)");
  CheckpointManifest m;
  try {
    const YAML::Node n = YAML::LoadFile(path);
    if (!n["format"] || n["format"].as<std::string>() != kFormat)
      fail(path, ": format is not '", kFormat, "'");
    const int version = n["version"].as<int>();
    if (version != kVersion && version != 1)
      fail(path, ": version ", version, " is not supported (expected 1 or ", kVersion, ")");
    m.step = n["step"].as<int64_t>();
    m.tokens_seen = n["tokens_seen"].as<int64_t>();
    m.data_state = n["data_state"].as<int64_t>();
    m.total_steps = n["schedule"]["total_steps"].as<int64_t>();
    m.seed = n["rng"]["seed"].as<uint64_t>();
    m.tp = n["layout"]["tp"].as<int>();
    m.pp = n["layout"]["pp"].as<int>();
    m.dp = n["layout"]["dp"].as<int>();
    m.zero = n["layout"]["zero"].as<int>();
    m.config_yaml = n["config"].as<std::string>();
    if (version == 1) m.config_yaml = config_of_version_1(m.config_yaml);
    parse_entries(n, path, m);
  } catch (const YAML::Exception& e) {
    fail(path, ": malformed manifest (", e.msg, ")");
  }
  return m;
}

std::string checkpoint_dir_name(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

int64_t finished_step(const std::string& name) {
  if (name.size() <= 5 || name.size() > 5 + 18 || name.rfind("step_", 0) != 0 ||
      name.find_first_not_of("0123456789", 5) != std::string::npos)
    return -1;
  return std::stoll(name.substr(5));
}

std::string find_latest_checkpoint(const std::string& dir) {
  if (!fs::is_directory(dir)) return "";
  // `latest` is written by rename, so a regular file; anything else (a
  // symlink to /dev/zero would never end a line) is ignored like a bad name.
  std::error_code ec;
  std::ifstream latest;
  if (fs::is_regular_file(fs::symlink_status(dir + "/latest", ec))) latest.open(dir + "/latest");
  std::string name;
  if (latest && std::getline(latest, name) && finished_step(name) >= 0 &&
      fs::exists(dir + "/" + name + "/manifest.yaml"))
    return dir + "/" + name;
  int64_t best = -1;
  std::string best_path;
  for (const auto& e : fs::directory_iterator(dir)) {
    const int64_t s = finished_step(e.path().filename().string());
    if (s < 0 || !fs::exists(e.path() / "manifest.yaml")) continue;
    if (s > best) best = s, best_path = e.path().string();
  }
  return best_path;
}

}  // namespace dt
