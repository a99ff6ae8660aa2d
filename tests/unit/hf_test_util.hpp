// Shared by the Hugging Face export/import tests: a tiny trained checkpoint,
// an HF model directory read back by a reader written here from the
// safetensors format (not difftron's reader), a writer for crafting damaged
// directories, and difftron's own logits on the checkpoint.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "data/tokenizer.hpp"
#include "eval/eval_model.hpp"
#include "tests/unit/test_data_loader_stream_util.hpp"
#include "trainer/trainer.hpp"

namespace dt_test {

namespace fs = std::filesystem;

// The run config of the tiny models: byte tokenizer (V 257 padded to 320),
// D 32, 2 layers, d 8 (diff: 2 heads of 2·8; standard: heads of 8).
// init_std 0.3 makes the attention maps sharp (scores of order 1, not
// 0.02² · D), so a wrong q/k row order or RoPE pairing changes the logits at
// order 1 instead of hiding under near-uniform attention; lr 0.02 moves g_sub
// and the λ vectors visibly away from their init in 3 steps.
inline std::string hf_tiny_yaml(const std::string& dir, const std::string& model_extra,
                                const std::string& ckpt_extra = "") {
  return "model: {vocab_size: 320, d_model: 32, n_layers: 2, ffn_hidden: 64, init_std: 0.3, " + model_extra +
         "}\n"
         "train: {seq_len: 16, global_batch_size: 4, max_steps: 3, lr: 0.02, warmup_steps: 1, log_every: 100, "
         "run_dir: " + dir + "/run}\n"
         "data: {datasets: [{path: " + dir + "/shards}]}\n"
         "parallel: {micro_batch_size: 2}\n"
         "checkpoint: {dir: " + dir + "/ckpt, every_steps: 3" + ckpt_extra + "}\n"
         "runtime: {threads: 1}\n";
}

// Trains the tiny model 3 steps; returns <dir>/ckpt/step_00000003.
inline std::string hf_tiny_checkpoint(const std::string& dir, const std::string& model_extra) {
  auto tok = dt::make_tokenizer("byte");
  std::vector<Tokens> docs;
  for (int d = 0; d < 20; ++d)
    docs.push_back(tok->encode("document " + std::to_string(d) + ": the quick brown fox jumps over the lazy dog."));
  fs::create_directories(dir + "/shards");
  write_shard(dir + "/shards/shard_00000.h5", docs, tok->vocab_size(), tok->eos_id(), tok->name());
  dt::Trainer trainer(dt::load_config_text(hf_tiny_yaml(dir, model_extra)));
  trainer.run();
  const std::string ck = dir + "/ckpt/step_00000003";
  EXPECT_TRUE(fs::exists(ck + "/manifest.yaml"));
  return ck;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<double> v;        // the values, widened
  std::vector<uint8_t> raw;     // the stored bytes
};
using StTensors = std::map<std::string, StTensor>;

// One safetensors file, from the format's definition: u64 header length,
// JSON header, data; F32 and BF16 (the upper half of an f32).
inline StTensors read_st(const std::string& path) {
  const std::string blob = slurp(path);
  uint64_t n = 0;
  for (int b = 0; b < 8; ++b) n |= uint64_t(uint8_t(blob.at(size_t(b)))) << (8 * b);
  const dt::Json h = dt::Json::parse(blob.substr(8, n));
  StTensors out;
  for (const auto& [name, e] : h.items()) {
    if (name == "__metadata__") continue;
    StTensor t;
    t.dtype = e["dtype"];
    t.shape = e["shape"].get<std::vector<int64_t>>();
    const size_t b0 = 8 + n + e["data_offsets"][0].get<size_t>(), b1 = 8 + n + e["data_offsets"][1].get<size_t>();
    t.raw.assign(blob.begin() + long(b0), blob.begin() + long(b1));
    const size_t esize = t.dtype == "F32" ? 4 : 2;
    EXPECT_TRUE(t.dtype == "F32" || t.dtype == "BF16") << name << " " << t.dtype;
    for (size_t i = 0; i < t.raw.size(); i += esize) {
      uint32_t u = 0;
      if (esize == 4) std::memcpy(&u, &t.raw[i], 4);
      else u = uint32_t(t.raw[i] | (t.raw[i + 1] << 8)) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      t.v.push_back(f);
    }
    out[name] = std::move(t);
  }
  return out;
}

// A safetensors file of the given tensors (raw bytes as given), header padded to 8.
inline void write_st(const std::string& path, const StTensors& ts) {
  dt::Json h = dt::Json::object();
  size_t off = 0;
  for (const auto& [name, t] : ts) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.raw.size()}}};
    off += t.raw.size();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const uint64_t n = header.size();
  for (int b = 0; b < 8; ++b) f.put(char((n >> (8 * b)) & 0xff));
  f << header;
  for (const auto& [name, t] : ts) f.write(reinterpret_cast<const char*>(t.raw.data()), long(t.raw.size()));
}

// An HF model directory: config.json and every tensor (index or single file).
struct HfDir {
  dt::Json config;
  StTensors t;
};
inline HfDir read_hf_dir(const std::string& dir) {
  HfDir d;
  d.config = dt::Json::parse(slurp(dir + "/config.json"));
  std::vector<std::string> files{"model.safetensors"};
  if (fs::exists(dir + "/model.safetensors.index.json")) {
    files.clear();
    const dt::Json index = dt::Json::parse(slurp(dir + "/model.safetensors.index.json"));
    for (const auto& [name, file] : index["weight_map"].items())
      if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
  }
  for (const std::string& f : files)
    for (auto& [name, t] : read_st(dir + "/" + f)) d.t[name] = std::move(t);
  return d;
}

// difftron's logits (T, V) for one sequence from the checkpoint.
inline std::vector<float> difftron_logits(const std::string& ckpt, const std::vector<int32_t>& tokens) {
  dt::EvalModel em = dt::load_model_for_eval(ckpt, 1, int(tokens.size()));
  em.model->forward(tokens.data(), tokens.data());
  const dt::Tensor l = em.model->logits();
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

// max |a − b| / max |b|: the error relative to the logits' scale.
template <typename A, typename B>
double rel_err(const std::vector<A>& a, const std::vector<B>& b) {
  double num = 0, den = 0;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    num = std::max(num, std::abs(double(a[i]) - double(b[i]))), den = std::max(den, std::abs(double(b[i])));
  return num / std::max(den, 1e-300);
}

}  // namespace dt_test
