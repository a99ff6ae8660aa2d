#include "checkpoint/hf_import.hpp"

#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "checkpoint/checkpoint.hpp"

namespace dt {

namespace fs = std::filesystem;

namespace {

Json read_json_file(const std::string& path) {
  return parse_json(read_whole_file(path, "(an HF model directory holds config.json and model.safetensors)"), path);
}

// A shard name from the index: a plain file name inside the directory.
std::string shard_path(const std::string& dir, const std::string& index, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    fail(index, ": weight file '", name, "' is not a plain file name in ", dir);
  return dir + "/" + name;
}

}  // namespace

HfCheckpoint::HfCheckpoint(const std::string& dir, const ModelConfig& m) : dir_(dir), layout_(hf_layout(m)) {
  if (!fs::is_directory(dir)) fail("hf:", dir, ": not a directory; expected an HF model directory");
  check_hf_config(read_json_file(dir + "/config.json"), m, dir + "/config.json");

  // The weights: one file, or the shards the index names (each tensor in the file it says).
  const std::string index = dir + "/model.safetensors.index.json";
  std::map<std::string, std::string> listed;  // tensor → file, from the index
  if (fs::exists(index)) {
    const Json j = read_json_file(index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(index, ": no weight_map object; expected {\"metadata\": ..., \"weight_map\": {tensor: file}}");
    std::map<std::string, size_t> opened;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail(index, ": weight_map.", name, ": ", json_kind(file), ", expected a file name");
      const std::string path = shard_path(dir, index, file.get<std::string>());
      if (!opened.count(path)) opened[path] = files_.size(), files_.emplace_back(path);
      listed[name] = path;
    }
  } else if (fs::exists(dir + "/model.safetensors")) {
    files_.emplace_back(dir + "/model.safetensors");
  } else {
    fail("hf:", dir, ": neither model.safetensors nor model.safetensors.index.json");
  }
  for (size_t f = 0; f < files_.size(); ++f)
    for (const auto& [name, t] : files_[f].tensors()) {
      const auto it = listed.find(name);
      if (!listed.empty() && (it == listed.end() || it->second != files_[f].path()))
        fail(files_[f].path(), ": tensor ", name, " is not in the index's weight_map for this file (", index, ")");
      if (!where_.emplace(name, f).second)
        fail(files_[f].path(), ": tensor ", name, " is stored twice (also in ", files_[where_[name]].path(), ")");
    }
  for (const auto& [name, path] : listed)
    if (!where_.count(name)) fail(path, ": tensor ", name, " is missing (the index lists it in this file)");

  // Exactly the tensors the model needs, with its shapes.
  std::set<std::string> used;
  for (const ParamSpec& spec : param_registry(m)) {
    const HfTensor t = hf_tensor(layout_, spec);
    if (t.name.empty()) continue;
    const auto it = where_.find(t.name);
    const std::string file = files_.size() == 1 ? files_[0].path() : "hf:" + dir;
    if (it == where_.end()) fail(file, ": tensor ", t.name, " is missing (the model's ", spec.name, ")");
    const SafetensorsTensor& st = files_[it->second].tensors().at(t.name);
    if (st.shape != spec.shape)
      fail(files_[it->second].path(), ": tensor ", t.name, " has shape ", shape_text(st.shape), ", expected ",
           shape_text(spec.shape), " from the run's model config");
    used.insert(t.name);
  }
  for (const auto& [name, f] : where_) {
    if (used.count(name)) continue;
    // transformers ties lm_head to the embedding when the config says so and
    // ignores a stored copy; so does this reader.
    if (name == "lm_head.weight" && m.tie_embeddings) {
      notes_.push_back("lm_head.weight ignored: config.json ties it to model.embed_tokens.weight");
      continue;
    }
    fail(files_[f].path(), ": tensor ", name, " is not a parameter of the ", layout_.architecture,
         " model of the run's config (extra tensor)");
  }
}

void HfCheckpoint::read(const ParamSpec& spec, const TpSlice& s, float* out) const {
  const HfTensor t = hf_tensor(layout_, spec);
  if (t.name.empty()) {  // g_sub: DiffLlama's groupnorm has no weight
    std::fill(out, out + s.numel(), 1.0f);
    return;
  }
  const SafetensorsFile& f = files_[where_.at(t.name)];
  const int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
  if (t.rows.empty() && s.cols == cols) {  // contiguous rows
    f.read(t.name, s.row0 * cols, s.numel(), out);
    return;
  }
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t hf_row = t.rows.empty() ? s.row0 + r : t.rows[size_t(s.row0 + r)];
    f.read(t.name, hf_row * cols + s.col0, s.cols, out + r * s.cols);
  }
}

}  // namespace dt
