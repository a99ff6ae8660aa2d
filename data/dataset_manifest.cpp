#include "data/dataset_manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/error.hpp"
#include "data/file_list.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

constexpr const char* kFormat = "difftron-dataset";
constexpr int kVersion = 1;

// dir as the caller spelled it ("" = the working directory), so errors name what the user typed.
std::string manifest_path(const std::string& dir) { return (fs::path(dir) / kDatasetManifest).string(); }

// One directory's manifest as read back: its shards' names (as listed) and token counts.
struct Manifest {
  std::string path;
  std::vector<std::string> files;
  std::map<std::string, int64_t> tokens;
};

Manifest read_manifest(const std::string& dir, const std::string& spec) {
  Manifest m;
  m.path = manifest_path(dir);
  std::error_code ec;
  if (!fs::is_regular_file(m.path, ec))
    fail("dataset ", spec, ": incomplete dataset (no ", m.path,
         ", which difftron prepare writes last; an interrupted prepare?); re-run difftron prepare");
  try {
    const YAML::Node n = YAML::LoadFile(m.path);
    if (!n.IsMap() || !n["format"] || n["format"].as<std::string>() != kFormat)
      fail(m.path, ": format is not '", kFormat, "' (expected the manifest difftron prepare writes)");
    if (n["version"].as<int>() != kVersion)
      fail(m.path, ": version ", n["version"].as<int>(), " is not supported (expected ", kVersion, ")");
    if (!n["shards"].IsSequence())
      fail(m.path, ": 'shards' is not a list (expected one {file, num_tokens, num_docs} per shard)");
    for (const YAML::Node& s : n["shards"]) {
      const std::string file = s["file"].as<std::string>();
      const int64_t tokens = s["num_tokens"].as<int64_t>();
      if (file.empty() || file.find('/') != std::string::npos || tokens < 0 || !m.tokens.emplace(file, tokens).second)
        fail(m.path, ": bad shard entry '", file,
             "' (expected a file name in this directory, listed once, num_tokens >= 0)");
      m.files.push_back(file);
    }
  } catch (const YAML::Exception& e) {
    fail(m.path, ": malformed dataset manifest (", e.msg, "); re-run difftron prepare");
  }
  return m;
}

}  // namespace

void write_dataset_manifest(const std::string& dir) {
  struct Entry {
    std::string file;
    int64_t tokens, docs;
  };
  std::vector<Entry> entries;
  int64_t tokens = 0, docs = 0;
  for (const std::string& f : list_files(dir, /*recurse=*/false, ".h5")) {
    const ShardReader r(f);
    entries.push_back({fs::path(f).filename().string(), r.num_tokens(), r.meta().num_docs});
    tokens += r.num_tokens();
    docs += r.meta().num_docs;
  }
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << kFormat;
  e << YAML::Key << "version" << YAML::Value << kVersion;
  e << YAML::Key << "num_tokens" << YAML::Value << tokens;
  e << YAML::Key << "num_docs" << YAML::Value << docs;
  e << YAML::Key << "shards" << YAML::Value << YAML::BeginSeq;
  for (const Entry& s : entries)
    e << YAML::Flow << YAML::BeginMap << YAML::Key << "file" << YAML::Value << s.file << YAML::Key << "num_tokens"
      << YAML::Value << s.tokens << YAML::Key << "num_docs" << YAML::Value << s.docs << YAML::EndMap;
  e << YAML::EndSeq << YAML::EndMap;

  write_file_atomically(manifest_path(dir), std::string(e.c_str()) + "\n");
}

std::vector<ListedShard> dataset_shards(const std::string& spec) {
  const std::vector<std::string> files = list_files(spec, /*recurse=*/false, ".h5");
  std::map<std::string, Manifest> manifests;  // by directory
  std::set<std::string> names;                // of the files, for a directory spec
  std::vector<ListedShard> out;
  for (const std::string& f : files) {
    const fs::path p(f);
    const std::string dir = p.parent_path().string(), name = p.filename().string();
    auto it = manifests.find(dir);
    if (it == manifests.end()) it = manifests.emplace(dir, read_manifest(dir, spec)).first;
    const auto listed = it->second.tokens.find(name);
    if (listed == it->second.tokens.end())
      fail("dataset ", spec, ": shard ", f, " is not listed in ", it->second.path,
           " (added after difftron prepare wrote it?); re-run difftron prepare");
    out.push_back({f, listed->second});
    names.insert(name);
  }
  std::error_code ec;
  if (fs::is_directory(spec, ec))  // the whole directory: every listed shard must be there
    for (const std::string& name : manifests.begin()->second.files)
      if (!names.count(name))
        fail("dataset ", spec, ": incomplete dataset (", manifests.begin()->second.path, " lists ", name,
             ", which is missing; an unfinished copy?); re-run difftron prepare or copy the dataset again");
  return out;
}

ShardReader open_listed_shard(const ListedShard& shard) {
  ShardReader r(shard.path);
  if (r.num_tokens() != shard.num_tokens)
    fail("shard ", shard.path, ": holds ", r.num_tokens(), " tokens but its dataset manifest lists ", shard.num_tokens,
         " (replaced after difftron prepare?); re-run difftron prepare");
  return r;
}

}  // namespace dt
