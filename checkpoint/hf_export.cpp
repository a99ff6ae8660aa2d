#include "checkpoint/hf_export.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "checkpoint/checkpoint_export.hpp"
#include "checkpoint/hf_layout.hpp"
#include "checkpoint/safetensors_writer.hpp"
#include "data/tokenizer.hpp"

namespace dt {

namespace fs = std::filesystem;

int64_t parse_byte_size(const std::string& text) {
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  const std::string unit = text.substr(std::min(used, text.size()));
  const struct {
    const char* name;
    double scale;
  } units[] = {{"", 1},      {"B", 1},        {"KB", 1e3},      {"MB", 1e6},       {"GB", 1e9},
               {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824}};
  for (const auto& u : units)
    if (unit == u.name && v > 0 && v * u.scale < 9e18 && v * u.scale >= 1) return int64_t(v * u.scale);
  fail("--max-shard-size ", text, ": expected a size such as 5GB, 500MB, 64KiB or a number of bytes (> 0)");
}

namespace {

// OUT_DIR is replaced by a rename: it may be absent or an empty directory,
// never a file, a symlink or a directory with something in it.
void check_output_dir(const std::string& ckpt_dir, const std::string& out) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (fs::exists(st) && (!fs::is_directory(st) || !fs::is_empty(out, ec)))
    fail("export output ", out, fs::is_directory(st) ? " is a directory that is not empty" : " exists and is not a directory",
         "; expected a new directory name or an empty directory");
  fs::path parent = fs::path(out).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent)) fail("export output ", out, ": its parent ", parent.string(), " is not a directory");
  check_outside_checkpoint(ckpt_dir, out);
}

// The run's tokenizer's EOS id (also BOS: difftron separates documents by EOS
// and has no BOS), or −1 when the tokenizer cannot be loaded here.
int64_t eos_of(const std::string& tokenizer) {
  try {
    return make_tokenizer(tokenizer)->eos_id();
  } catch (const Error&) {
    return -1;
  }
}

struct Planned {
  ParamSpec spec;
  HfTensor hf;
  int64_t bytes = 0;
};

// The HF tensor of one difftron parameter: rows moved to their HF place and,
// for a diff o_proj, g_sub folded into the columns of every head.
std::vector<float> hf_values(const CheckpointModel& cm, const Planned& p) {
  std::vector<float> w = cm.reader.assemble(p.spec, "param");
  const int64_t cols = p.spec.shape.size() == 2 ? p.spec.shape[1] : 1;
  if (!p.hf.rows.empty()) {
    std::vector<float> moved(w.size());
    for (int64_t r = 0; r < p.spec.shape[0]; ++r)
      std::copy_n(w.begin() + r * cols, cols, moved.begin() + p.hf.rows[size_t(r)] * cols);
    w.swap(moved);
  }
  if (p.hf.fold_subln) {
    const std::string subln = "layers." + std::to_string(p.spec.layer) + ".attn.subln.weight";
    const auto it = std::find_if(cm.registry.begin(), cm.registry.end(),
                                 [&](const ParamSpec& s) { return s.name == subln; });
    DT_CHECK(it != cm.registry.end(), subln, " not in the registry");
    const std::vector<float> g = cm.reader.assemble(*it, "param");  // (2d), shared by every head
    for (int64_t r = 0; r < p.spec.shape[0]; ++r)
      for (int64_t c = 0; c < cols; ++c) w[size_t(r * cols + c)] *= g[size_t(c) % g.size()];
  }
  return w;
}

HfExportResult write_hf_dir(const CheckpointModel& cm, const std::string& tmp, const HfExportOptions& opt) {
  const HfLayout L = hf_layout(cm.config.model);
  const std::string dtype = opt.bf16 ? "BF16" : "F32";
  std::vector<Planned> plan;
  for (const ParamSpec& spec : cm.registry) {
    Planned p{spec, hf_tensor(L, spec)};
    if (p.hf.name.empty()) continue;  // g_sub, folded into o_proj
    p.bytes = spec.numel() * safetensors_dtype_bytes(dtype);
    plan.push_back(std::move(p));
  }
  // Shards in model order: a new one when the next tensor would pass the
  // limit (a tensor larger than the limit sits alone in its shard).
  std::vector<std::vector<size_t>> shards(1);
  int64_t in_shard = 0;
  HfExportResult res;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!shards.back().empty() && in_shard + plan[i].bytes > opt.max_shard_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(i);
    in_shard += plan[i].bytes;
    res.weight_bytes += plan[i].bytes;
  }
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : name;
    std::vector<SafetensorsEntry> entries;
    for (size_t i : shards[s]) entries.push_back({plan[i].hf.name, plan[i].spec.shape, dtype});
    SafetensorsWriter w(tmp + "/" + file, entries, {{"format", "pt"}});
    for (size_t i : shards[s]) {  // one tensor in memory at a time
      const std::vector<float> v = hf_values(cm, plan[i]);
      w.write(plan[i].hf.name, v.data(), int64_t(v.size()));
      weight_map[plan[i].hf.name] = file;
    }
    w.finish();
    res.files.push_back(file);
  }
  if (shards.size() > 1) {
    const Json index = {{"metadata", {{"total_size", res.weight_bytes}}}, {"weight_map", weight_map}};
    write_file_atomically(tmp + "/model.safetensors.index.json", json_text_of(index, 2) + "\n");
    res.files.push_back("model.safetensors.index.json");
  }

  const std::string& tok = cm.config.data.tokenizer;
  const int64_t eos = eos_of(tok);
  write_file_atomically(tmp + "/config.json",
                        json_text_of(hf_config_json(cm.config, opt.bf16 ? "bfloat16" : "float32", eos, eos), 2) + "\n");
  Json gen = Json::object();
  if (eos >= 0) gen["bos_token_id"] = eos, gen["eos_token_id"] = eos;
  write_file_atomically(tmp + "/generation_config.json", json_text_of(gen, 2) + "\n");
  res.files.push_back("config.json");
  res.files.push_back("generation_config.json");

  const std::string suffix = "tokenizer.json";
  if (tok.size() >= suffix.size() && tok.compare(tok.size() - suffix.size(), suffix.size(), suffix) == 0) {
    if (!fs::is_regular_file(tok)) fail("data.tokenizer ", tok, ": no such file to copy into the export");
    fs::copy_file(tok, tmp + "/tokenizer.json");
    fsync_file(tmp + "/tokenizer.json");
    res.files.push_back("tokenizer.json");
    res.tokenizer_note = "tokenizer: copied " + tok;
  } else {
    res.tokenizer_note = "tokenizer: none written (data.tokenizer is '" + tok +
                         "'; export copies the run's tokenizer only when it is a tokenizer.json)";
  }
  if (eos < 0) res.tokenizer_note += "; bos/eos ids left out of config.json (tokenizer " + tok + " not loadable here)";
  return res;
}

}  // namespace

HfExportResult export_hf(const std::string& ckpt, const std::string& out_dir, const HfExportOptions& opt) {
  const CheckpointModel cm = open_checkpoint_model(ckpt);
  hf_layout(cm.config.model);  // refuses what HF cannot represent before anything is written
  check_output_dir(cm.reader.dir(), out_dir);
  const std::string tmp = temp_name_for(out_dir);
  std::error_code ec;
  if (!fs::create_directory(tmp, ec) || ec) fail("cannot create ", tmp, ": ", ec ? ec.message() : "exists");
  try {
    HfExportResult res = write_hf_dir(cm, tmp, opt);
    res.checkpoint = cm.reader.dir();
    fsync_dir(tmp);
    // rename(2) replaces an empty directory; anything else in the way was refused above.
    fs::rename(tmp, out_dir, ec);
    if (ec) fail("cannot rename ", tmp, " to ", out_dir, ": ", ec.message());
    fs::path parent = fs::path(out_dir).parent_path();
    fsync_dir(parent.empty() ? "." : parent.string());
    return res;
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace dt
