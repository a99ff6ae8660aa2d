#include "checkpoint/checkpoint_export.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.hpp"
#include "core/config_schema.hpp"
#include "core/json.hpp"
#include "checkpoint/safetensors_writer.hpp"

namespace dt {

namespace fs = std::filesystem;

namespace {

std::string resolve_checkpoint_dir(const std::string& path) {
  if (!fs::exists(path)) fail("checkpoint ", path, ": no such file or directory");
  if (fs::exists(fs::path(path) / "manifest.yaml")) return path;
  if (!fs::is_directory(path))
    fail("checkpoint ", path, ": not a directory (expected a step_<N> directory or a checkpoint root)");
  const std::string latest = find_latest_checkpoint(path);
  if (latest.empty())
    fail("checkpoint ", path, ": no manifest.yaml and no complete step_<N> checkpoint inside "
         "(expected a step_<N> directory or a checkpoint root)");
  return latest;
}

// What is at a path, for messages about what may not be replaced.
const char* file_kind(const fs::file_status& st) {
  if (fs::is_symlink(st)) return "a symlink";
  if (fs::is_directory(st)) return "a directory";
  if (fs::is_character_file(st) || fs::is_block_file(st)) return "a device";
  if (fs::is_fifo(st)) return "a fifo";
  return "not a regular file";
}

// The export replaces `out` by renaming a new file onto it. That must not
// replace a symlink (whose target the user meant), a device or a directory,
// nor a file of the checkpoint being read.
void check_export_output(const std::string& ckpt_dir, const std::string& out) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    fail("export output ", out, " is ", file_kind(st), ", not a regular file; expected a new file name or a regular "
         "file to replace");
  check_outside_checkpoint(ckpt_dir, out);
}

}  // namespace

void check_outside_checkpoint(const std::string& ckpt_dir, const std::string& out) {
  std::error_code ec;
  const fs::path dir = fs::canonical(ckpt_dir, ec);
  if (ec) fail("checkpoint ", ckpt_dir, ": ", ec.message());
  const fs::path target = fs::weakly_canonical(fs::absolute(out), ec);
  if (ec) fail("export output ", out, ": ", ec.message());
  if (std::mismatch(dir.begin(), dir.end(), target.begin(), target.end()).first == dir.end())
    fail("export output ", out, " is inside the checkpoint ", ckpt_dir, " being read; expected a path outside it");
}

CheckpointModel open_checkpoint_model(const std::string& path) {
  const std::string dir = resolve_checkpoint_dir(path);
  CheckpointReader reader(dir);  // verifies every file's size and crc32
  Config config = load_saved_config_text(reader.manifest().config_yaml, dir + "/manifest.yaml");
  std::vector<ParamSpec> registry = param_registry(config.model);

  // The stored tensors must be exactly the registry of the stored config.
  std::map<std::string, std::vector<int64_t>> stored;
  for (const CheckpointPiece& p : reader.manifest().pieces)
    if (p.kind == "param") stored.emplace(p.name, p.shape);
  for (const ParamSpec& spec : registry) {
    auto it = stored.find(spec.name);
    if (it == stored.end())
      fail("checkpoint ", dir, ": tensor ", spec.name, " is missing (its config's model has it)");
    if (it->second != spec.shape)
      fail("checkpoint ", dir, ": tensor ", spec.name, " has shape ", shape_text(it->second), ", expected ",
           shape_text(spec.shape), " from its config");
    stored.erase(it);
  }
  if (!stored.empty())
    fail("checkpoint ", dir, ": tensor ", stored.begin()->first, " is not a parameter of its config's model");
  return CheckpointModel{std::move(reader), std::move(config), std::move(registry)};
}

std::string model_config_json(const ModelConfig& m) {
  // nlohmann writes doubles as the shortest text that reads back the same,
  // with ".0" on whole numbers (10000.0), so JSON readers see floats.
  const Json j = {{"vocab_size", m.vocab_size},
                  {"d_model", m.d_model},
                  {"n_layers", m.n_layers},
                  {"n_heads", m.n_heads},
                  {"n_kv_heads", m.n_kv_heads},
                  {"head_dim", m.head_dim()},
                  {"ffn_hidden", m.ffn_hidden},
                  {"rope_theta", m.rope_theta},
                  {"norm_eps", m.norm_eps},
                  {"attention", config_schema::choice_name(config_schema::kAttention, m.attention)},
                  {"tie_embeddings", m.tie_embeddings}};
  return json_line(j);
}

std::string export_safetensors(const std::string& ckpt, const std::string& out) {
  const CheckpointModel cm = open_checkpoint_model(ckpt);
  check_export_output(cm.reader.dir(), out);
  std::vector<SafetensorsEntry> entries;
  for (const ParamSpec& spec : cm.registry) entries.push_back({spec.name, spec.shape});
  SafetensorsWriter w(out, entries,
                      {{"format", "pt"},
                       {"difftron_config", model_config_json(cm.config.model)},
                       {"step", std::to_string(cm.reader.manifest().step)}});
  // One tensor in memory at a time.
  for (const ParamSpec& spec : cm.registry) {
    const std::vector<float> t = cm.reader.assemble(spec, "param");
    w.write(spec.name, t.data(), int64_t(t.size()));
  }
  w.finish();
  return cm.reader.dir();
}

}  // namespace dt
