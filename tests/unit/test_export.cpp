// difftron export: a trained checkpoint written as one safetensors file holds
// every registry tensor, bit for bit what the checkpoint stores, under the
// DESIGN §2 names, with the model config in __metadata__. The file is read
// back with a parser written here from the format's rules, not the writer's code.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/config_schema.hpp"
#include "data/tokenizer.hpp"
#include "test_data_loader_stream_util.hpp"
#include "checkpoint/checkpoint_export.hpp"
#include "checkpoint/safetensors_writer.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;
using dt_test::ScratchDir;

// ---- a minimal JSON reader: objects (key order kept), arrays, strings, numbers, literals
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;
  const Json& at(const std::string& k) const {
    for (const auto& [key, v] : obj)
      if (key == k) return v;
    throw std::runtime_error("no key " + k);
  }
};

struct JsonParser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  char peek() { return ws(), i < s.size() ? s[i] : '\0'; }
  void expect(char c) {
    if (peek() != c) throw std::runtime_error(std::string("expected ") + c + " at " + std::to_string(i));
    ++i;
  }
  std::string string() {
    expect('"');
    std::string o;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c == '\\') {
        const char e = s[i++];
        if (e == 'u') {  // the writer emits \u00XX for control characters only
          o += char(std::stoi(s.substr(i, 4), nullptr, 16));
          i += 4;
        } else {
          o += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
        }
      } else {
        o += c;
      }
    }
    expect('"');
    return o;
  }
  Json value() {
    Json v;
    const char c = peek();
    if (c == '{') {
      v.kind = Json::Object, ++i;
      while (peek() != '}') {
        if (!v.obj.empty()) expect(',');
        std::string k = string();
        expect(':');
        v.obj.emplace_back(std::move(k), value());
      }
      ++i;
    } else if (c == '[') {
      v.kind = Json::Array, ++i;
      while (peek() != ']') {
        if (!v.arr.empty()) expect(',');
        v.arr.push_back(value());
      }
      ++i;
    } else if (c == '"') {
      v.kind = Json::String, v.str = string();
    } else if (s.compare(i, 4, "true") == 0 || s.compare(i, 5, "false") == 0) {
      v.kind = Json::Bool, v.b = s[i] == 't', i += v.b ? 4 : 5;
    } else {
      size_t used = 0;
      v.kind = Json::Number, v.num = std::stod(s.substr(i), &used), i += used;
    }
    return v;
  }
};

Json parse_json(const std::string& s) {
  JsonParser p{s};
  Json v = p.value();
  p.ws();
  if (p.i != s.size()) throw std::runtime_error("trailing bytes after JSON");
  return v;
}

// ---- a safetensors file as the format defines it
struct StFile {
  Json meta;                                  // __metadata__
  std::vector<std::string> names;             // in header order
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::vector<float>> data;
};

StFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GE(blob.size(), 8u);
  uint64_t n = 0;
  for (int b = 0; b < 8; ++b) n |= uint64_t(uint8_t(blob[b])) << (8 * b);  // little-endian u64
  EXPECT_LE(8 + n, blob.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  const std::string header = blob.substr(8, n);
  const size_t last = header.find_last_not_of(' ');
  const Json h = parse_json(header.substr(0, last + 1));  // padding: spaces only
  const std::string buffer = blob.substr(8 + n);
  StFile f;
  int64_t pos = 0;  // tensors tile the buffer in header order
  for (const auto& [name, e] : h.obj) {
    if (name == "__metadata__") {
      f.meta = e;
      continue;
    }
    EXPECT_EQ(e.at("dtype").str, "F32") << name;
    std::vector<int64_t> shape;
    int64_t count = 1;
    for (const Json& d : e.at("shape").arr) shape.push_back(int64_t(d.num)), count *= int64_t(d.num);
    const std::vector<Json>& offs = e.at("data_offsets").arr;
    const int64_t begin = int64_t(offs.at(0).num), end = int64_t(offs.at(1).num);
    EXPECT_EQ(begin, pos) << name << ": not contiguous";
    EXPECT_EQ(end - begin, count * 4) << name;
    EXPECT_LE(size_t(end), buffer.size()) << name;
    std::vector<float> v(static_cast<size_t>(count));
    std::memcpy(v.data(), buffer.data() + begin, size_t(end - begin));
    f.names.push_back(name);
    f.shapes[name] = shape;
    f.data[name] = std::move(v);
    pos = end;
  }
  EXPECT_EQ(size_t(pos), buffer.size()) << "data after the last tensor";
  return f;
}

// Trains 2 steps of a tiny model and saves <dir>/ckpt/step_00000002.
void train_tiny_checkpoint(const std::string& dir, const std::string& model_extra) {
  auto tok = make_tokenizer("byte");
  std::vector<dt_test::Tokens> docs;
  for (int d = 0; d < 20; ++d)
    docs.push_back(tok->encode("document " + std::to_string(d) + ": the quick brown fox jumps over the lazy dog."));
  fs::create_directories(dir + "/shards");
  dt_test::write_shard(dir + "/shards/shard_00000.h5", docs, tok->vocab_size(), tok->eos_id(), tok->name());
  const std::string yaml = R"(
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 64, )" +
                           model_extra + R"(}
train: {seq_len: 16, global_batch_size: 4, max_steps: 2, warmup_steps: 1, log_every: 1, run_dir: )" + dir +
                           R"(/run}
data: {datasets: [{path: )" + dir + R"(/shards}]}
parallel: {micro_batch_size: 2}
checkpoint: {dir: )" + dir + R"(/ckpt, every_steps: 2}
)";
  Trainer trainer(load_config_text(yaml));
  trainer.run();
  ASSERT_TRUE(fs::exists(dir + "/ckpt/step_00000002/manifest.yaml"));
}

// Whether a temporary of `out` (out.tmp.<pid>) is left beside it.
bool temporary_left(const std::string& out) {
  const fs::path p(out);
  for (const auto& e : fs::directory_iterator(p.parent_path()))
    if (e.path().filename().string().rfind(p.filename().string() + ".tmp", 0) == 0) return true;
  return false;
}

// Every registry tensor, in registry order, equal bit for bit to the checkpoint's.
void expect_export_matches_checkpoint(const std::string& ckpt, const std::string& out) {
  const CheckpointReader ck(ckpt);
  const Config cfg = load_config_text(ck.manifest().config_yaml);
  const std::vector<ParamSpec> reg = param_registry(cfg.model);
  const StFile f = read_safetensors(out);
  ASSERT_EQ(f.names.size(), reg.size());
  for (size_t i = 0; i < reg.size(); ++i) {
    ASSERT_EQ(f.names[i], reg[i].name);
    EXPECT_EQ(f.shapes.at(reg[i].name), reg[i].shape) << reg[i].name;
    const std::vector<float> want = ck.assemble(reg[i], "param");
    const std::vector<float>& got = f.data.at(reg[i].name);
    ASSERT_EQ(got.size(), want.size()) << reg[i].name;
    // Exact: export copies the stored fp32 bits, no arithmetic touches them.
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << reg[i].name;
  }
  // __metadata__ is string → string; the config is JSON inside its string.
  for (const auto& [k, v] : f.meta.obj) EXPECT_EQ(v.kind, Json::String) << k;
  EXPECT_EQ(f.meta.at("format").str, "pt");
  EXPECT_EQ(f.meta.at("step").str, "2");
  const Json c = parse_json(f.meta.at("difftron_config").str);
  const ModelConfig& m = cfg.model;
  EXPECT_EQ(c.at("vocab_size").num, double(m.vocab_size));
  EXPECT_EQ(c.at("d_model").num, m.d_model);
  EXPECT_EQ(c.at("n_layers").num, m.n_layers);
  EXPECT_EQ(c.at("n_heads").num, m.n_heads);
  EXPECT_EQ(c.at("n_kv_heads").num, m.n_kv_heads);
  EXPECT_EQ(c.at("head_dim").num, m.head_dim());
  EXPECT_EQ(c.at("ffn_hidden").num, m.ffn_hidden);
  EXPECT_EQ(c.at("rope_theta").num, m.rope_theta);
  EXPECT_EQ(c.at("norm_eps").num, m.norm_eps);
  EXPECT_EQ(c.at("attention").str, config_schema::choice_name(config_schema::kAttention, m.attention));
  EXPECT_EQ(c.at("tie_embeddings").b, m.tie_embeddings);
}

TEST(ExportSafetensors, DiffModelHoldsEveryCheckpointTensorExactly) {
  ScratchDir dir;
  train_tiny_checkpoint(dir.path, "attention: diff");
  const std::string out = dir.file("model.safetensors");
  // The root resolves to the newest complete checkpoint, step_00000002.
  EXPECT_EQ(export_safetensors(dir.file("ckpt"), out), dir.file("ckpt/step_00000002"));
  EXPECT_FALSE(temporary_left(out));
  expect_export_matches_checkpoint(dir.file("ckpt/step_00000002"), out);
  const StFile f = read_safetensors(out);
  EXPECT_EQ(f.shapes.at("layers.1.attn.lambda_k2"), (std::vector<int64_t>{8}));  // d = 32 / (2·2)
  EXPECT_EQ(f.shapes.at("layers.0.attn.k_proj.weight"), (std::vector<int64_t>{16, 32}));  // [2·KV·d, D]
  EXPECT_EQ(f.shapes.at("lm_head.weight"), (std::vector<int64_t>{320, 32}));
}

// DIFF V2 (DESIGN §2): Wq [2·H·d, D], Wk [KV·d, D], lambda_proj [H, D]; no λ vectors or g_sub.
TEST(ExportSafetensors, DiffV2ModelHasLambdaProjAndNoLambdaVectors) {
  ScratchDir dir;
  train_tiny_checkpoint(dir.path, "attention: diff_v2");
  const std::string out = dir.file("v2.safetensors");
  export_safetensors(dir.file("ckpt/step_00000002"), out);
  expect_export_matches_checkpoint(dir.file("ckpt/step_00000002"), out);
  const StFile f = read_safetensors(out);
  EXPECT_EQ(f.shapes.at("layers.1.attn.q_proj.weight"), (std::vector<int64_t>{64, 32}));  // d = 32 / 2
  EXPECT_EQ(f.shapes.at("layers.1.attn.k_proj.weight"), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(f.shapes.at("layers.1.attn.lambda_proj.weight"), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(f.data.count("layers.1.attn.lambda_q1"), 0u);
  EXPECT_EQ(f.data.count("layers.1.attn.subln.weight"), 0u);
}

TEST(ExportSafetensors, TiedStandardModelHasOnlyTheEmbeddingAndNoLambda) {
  ScratchDir dir;
  train_tiny_checkpoint(dir.path, "attention: standard, tie_embeddings: true");
  const std::string out = dir.file("tied.safetensors");
  export_safetensors(dir.file("ckpt/step_00000002"), out);
  expect_export_matches_checkpoint(dir.file("ckpt/step_00000002"), out);
  const StFile f = read_safetensors(out);
  EXPECT_EQ(f.data.count("embed.weight"), 1u);
  EXPECT_EQ(f.data.count("lm_head.weight"), 0u);
  for (const std::string& n : f.names) {
    EXPECT_EQ(n.find("lambda"), std::string::npos) << n;
    EXPECT_EQ(n.find("subln"), std::string::npos) << n;
  }
}

TEST(ExportSafetensors, CorruptShardIsAnErrorNamingTheFileAndWritesNothing) {
  ScratchDir dir;
  train_tiny_checkpoint(dir.path, "attention: diff");
  const std::string shard = dir.file("ckpt/step_00000002/shard_0.h5");
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(2000);
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x01);
    f.seekp(2000);
    f.write(&c, 1);
  }
  const std::string out = dir.file("bad.safetensors");
  const std::string why = dt_test::error_of([&] { export_safetensors(dir.file("ckpt/step_00000002"), out); });
  EXPECT_NE(why.find(shard), std::string::npos) << why;
  EXPECT_NE(why.find("checksum"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(temporary_left(out));
}

TEST(ExportSafetensors, DirectoryWithoutCheckpointIsAnErrorNamingIt) {
  ScratchDir dir;
  const std::string why = dt_test::error_of([&] { export_safetensors(dir.path, dir.file("x.safetensors")); });
  EXPECT_NE(why.find(dir.path), std::string::npos) << why;
  EXPECT_NE(why.find("no manifest.yaml"), std::string::npos) << why;
}

TEST(ExportSafetensors, HeaderPadsWithSpacesToAnEightByteBoundary) {
  for (size_t len : {1, 7, 8, 9, 30}) {
    const std::string h = safetensors_header({{std::string(len, 'x'), {2, 3}}}, {{"k", "v\"q"}});
    EXPECT_EQ(h.size() % 8, 0u) << h;
    const size_t last = h.find_last_not_of(' ');
    EXPECT_EQ(h[last], '}');
    const Json j = parse_json(h.substr(0, last + 1));
    EXPECT_EQ(j.at("__metadata__").at("k").str, "v\"q");
    EXPECT_EQ(j.at(std::string(len, 'x')).at("data_offsets").arr[1].num, 24);
  }
}

}  // namespace
}  // namespace dt
