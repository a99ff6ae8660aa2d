#include "trainer/run_guard.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/error.hpp"

namespace dt {

namespace fs = std::filesystem;

namespace {

// The checkpoint directory's entries that belong to a run.
std::vector<std::string> checkpoint_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n == "latest" || n.rfind("step_", 0) == 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> run_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const char* n : {"metrics.jsonl", "config.yaml"})
    if (fs::exists(fs::path(dir) / n, ec)) out.push_back(n);
  return out;
}

std::string listing(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 4; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 4) s += ", ... (" + std::to_string(names.size()) + " entries)";
  return s;
}

// section.key -> value text, from the config's own YAML form; data.datasets
// becomes data.datasets.count and data.datasets[i].path / .weight.
std::map<std::string, std::string> flatten(const Config& c) {
  std::map<std::string, std::string> out;
  const YAML::Node root = YAML::Load(config_to_yaml(c));
  for (const auto& section : root)
    for (const auto& kv : section.second) {
      const std::string key = section.first.as<std::string>() + "." + kv.first.as<std::string>();
      if (kv.second.IsSequence()) {
        out[key + ".count"] = std::to_string(kv.second.size());
        for (size_t i = 0; i < kv.second.size(); ++i)
          for (const auto& f : kv.second[i])
            out[key + "[" + std::to_string(i) + "]." + f.first.as<std::string>()] = YAML::Dump(f.second);
      } else {
        out[key] = YAML::Dump(kv.second);
      }
    }
  return out;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// What a key's change on resume means.
enum class Change { Free, Noted, Refused };

Change classify(const std::string& key) {
  if (starts_with(key, "parallel.") || starts_with(key, "runtime.") || starts_with(key, "checkpoint.") ||
      key == "train.run_dir" || key == "train.log_every" || key == "model.init_std" || key == "model.recompute")
    return Change::Free;
  if (key == "train.seed" || key == "train.seq_len" || key == "train.global_batch_size" || starts_with(key, "model.") ||
      key == "data.tokenizer" || key == "data.datasets.count" || key == "data.long_doc_tokens" ||
      key == "data.long_doc_factor" || (starts_with(key, "data.datasets[") && key.find(".weight") != std::string::npos))
    return Change::Refused;
  return Change::Noted;  // the LR schedule, the optimizer, the step budget, dataset paths
}

}  // namespace

std::string previous_run(const Config& cfg) {
  const std::vector<std::string> run = run_entries(cfg.train.run_dir);
  const std::vector<std::string> ck = checkpoint_entries(cfg.checkpoint.dir);
  std::string what;
  if (!run.empty()) what = "train.run_dir " + cfg.train.run_dir + " holds another run (" + listing(run) + ")";
  if (!ck.empty())
    what += (what.empty() ? "" : " and ") + std::string("checkpoint.dir ") + cfg.checkpoint.dir +
            " holds checkpoints (" + listing(ck) + ")";
  if (what.empty()) return "";
  return what +
         "; a fresh run would overwrite them: continue that run with --resume auto, choose a new directory, or "
         "pass --force to replace it";
}

std::string clear_previous_run(const Config& cfg) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const std::string& n : run_entries(cfg.train.run_dir)) {
    fs::remove(fs::path(cfg.train.run_dir) / n, ec);
    if (ec) fail("--force: cannot remove ", cfg.train.run_dir, "/", n, ": ", ec.message());
    removed.push_back(cfg.train.run_dir + "/" + n);
  }
  for (const std::string& n : checkpoint_entries(cfg.checkpoint.dir)) {
    fs::remove_all(fs::path(cfg.checkpoint.dir) / n, ec);
    if (ec) fail("--force: cannot remove ", cfg.checkpoint.dir, "/", n, ": ", ec.message());
    removed.push_back(cfg.checkpoint.dir + "/" + n);
  }
  return listing(removed);
}

void require_writable_dir(const char* key, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(key, " ", dir, ": cannot create it (", ec.message(), "); expected a writable directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail(key, " ", dir, ": not writable (", std::strerror(errno), "); expected a writable directory");
}

std::string resume_mismatch(const Config& stored, const Config& now, std::vector<std::string>& notes) {
  const auto a = flatten(stored), b = flatten(now);
  std::map<std::string, std::pair<std::string, std::string>> changed;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    const std::string w = it == b.end() ? "(unset)" : it->second;
    if (v != w) changed[k] = {v, w};
  }
  for (const auto& [k, w] : b)
    if (!a.count(k)) changed[k] = {"(unset)", w};
  for (const auto& [key, values] : changed) {
    const Change c = classify(key);
    if (c == Change::Refused)
      return key + " is " + values.first + " in the checkpoint and " + values.second +
             " in the config: resuming would not continue the same run (a resume may change the layout, runtime, "
             "checkpoint and logging settings, the LR schedule, the optimizer settings, the step budget and dataset "
             "paths; to start a new stage from these weights, e.g. context extension, use checkpoint.init_from)";
    if (c == Change::Noted) notes.push_back(key + ": " + values.first + " -> " + values.second);
  }
  return "";
}

}  // namespace dt
