// `checkpoint.init_from: hf:DIR` loads what `export --format hf` wrote back
// into a model that computes the same function; the index of a sharded
// export is consistent with its shards; bf16 export rounds to nearest even;
// F16 weights are read by the IEEE definition; and a damaged directory or a
// config that does not fit is one line naming the file, tensor or field.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <set>

#include "tests/unit/hf_test_util.hpp"
#include "checkpoint/checkpoint.hpp"
#include "checkpoint/hf_export.hpp"

namespace dt {
namespace {

using namespace dt_test;

// A run of the same tiny model that starts from hf:<hf> (nothing trained).
std::unique_ptr<Trainer> import_run(const std::string& dir, const std::string& model, const std::string& hf,
                                    const std::vector<std::string>& overrides = {}) {
  return std::make_unique<Trainer>(
      load_config_text(hf_tiny_yaml(dir, model, ", init_from: 'hf:" + hf + "'"), overrides));
}

// The 2 × 16 tokens of one micro-batch, and logits of the Trainer's model on them.
std::vector<int32_t> batch_tokens() {
  std::vector<int32_t> t;
  for (int i = 0; i < 32; ++i) t.push_back((i * 37 + 11) % 257);
  return t;
}
std::vector<float> trainer_logits(Trainer& tr) {
  const std::vector<int32_t> t = batch_tokens();
  tr.model().forward(t.data(), t.data());
  const Tensor l = tr.model().logits();
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}
std::vector<float> checkpoint_logits(const std::string& ck) {
  EvalModel em = load_model_for_eval(ck, 2, 16);
  const std::vector<int32_t> t = batch_tokens();
  em.model->forward(t.data(), t.data());
  const Tensor l = em.model->logits();
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

// Every imported tensor bit for bit as the checkpoint stores it, but a diff
// model's o_proj (g_sub folded in on export) and g_sub (1 after import).
void expect_params_as_stored(Trainer& tr, const std::string& ck) {
  const CheckpointReader reader(ck);
  for (size_t i = 0; i < tr.model().registry().size(); ++i) {
    const ParamSpec& spec = tr.model().registry()[i];
    const std::vector<float> want = reader.assemble(spec, "param");
    const float* got = tr.model().params()[i].f32();
    if (spec.name.find("subln") != std::string::npos) {
      for (int64_t j = 0; j < spec.numel(); ++j) EXPECT_EQ(got[j], 1.0f) << spec.name;
    } else if (spec.name.find("out_proj") == std::string::npos || tr.model().config().attention != AttentionKind::Diff) {
      EXPECT_EQ(std::memcmp(got, want.data(), want.size() * 4), 0) << spec.name;
    }
  }
}

TEST(HfImport, DiffLlamaRoundTripComputesTheSameFunction) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: diff";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("hf"), {});
  auto tr = import_run(dir.path, model, dir.file("hf"));
  expect_params_as_stored(*tr, ck);
  // The fold rounds each o_proj weight once in fp32 (2^-24 relative); the
  // logits move by a few 1e-7 of their scale, well inside 1e-5.
  const double err = rel_err(trainer_logits(*tr), checkpoint_logits(ck));
  EXPECT_LE(err, 1e-5);
  EXPECT_GT(err, 0.0) << "g_sub differs from 1 after training, so the fold must round somewhere";
}

TEST(HfImport, LlamaRoundTripIsBitExact) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: standard, tie_embeddings: true";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("hf"), {});
  auto tr = import_run(dir.path, model, dir.file("hf"));
  expect_params_as_stored(*tr, ck);
  const std::vector<float> a = trainer_logits(*tr), b = checkpoint_logits(ck);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);  // only permutations: no arithmetic
  // A stored lm_head.weight of a tied model is ignored, as transformers ties it to the embedding.
  StTensors t = read_st(dir.file("hf/model.safetensors"));
  t["lm_head.weight"] = t.at("model.embed_tokens.weight");
  std::fill(t["lm_head.weight"].raw.begin(), t["lm_head.weight"].raw.end(), uint8_t(0x3f));
  write_st(dir.file("hf/model.safetensors"), t);
  auto again = import_run(dir.path, model, dir.file("hf"));
  expect_params_as_stored(*again, ck);
}

// transformers has no DIFF V2 class: the export names its own model_type, lays
// the query heads out in DESIGN order with Llama's RoPE pairing and adds
// lambda_proj; importing it back is a permutation only, so bit exact.
TEST(HfImport, DiffV2RoundTripIsBitExact) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: diff_v2";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("hf"), {});
  const HfDir hf = read_hf_dir(dir.file("hf"));
  EXPECT_EQ(hf.config["model_type"], "difftron_diff_v2");
  EXPECT_EQ(hf.config["num_attention_heads"], 2);
  EXPECT_EQ(hf.config["num_query_heads"], 4);
  EXPECT_EQ(hf.config["num_key_value_heads"], 1);
  EXPECT_EQ(hf.config["head_dim"], 16);
  EXPECT_EQ(hf.t.at("model.layers.1.self_attn.q_proj.weight").shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(hf.t.at("model.layers.1.self_attn.lambda_proj.weight").shape, (std::vector<int64_t>{2, 32}));
  auto tr = import_run(dir.path, model, dir.file("hf"));
  expect_params_as_stored(*tr, ck);
  const std::vector<float> a = trainer_logits(*tr), b = checkpoint_logits(ck);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

TEST(HfExport, ShardedIndexMatchesItsShardsAndImportsLikeOneFile) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 2, attention: diff";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  HfExportOptions opt;
  opt.max_shard_bytes = 20000;
  const HfExportResult r = export_hf(ck, dir.file("sharded"), opt);
  export_hf(ck, dir.file("single"), {});
  const Json index = Json::parse(slurp(dir.file("sharded/model.safetensors.index.json")));
  const StTensors all = read_hf_dir(dir.file("single")).t;
  // Every tensor exactly once, in the file the index names; total_size = the tensors' bytes.
  std::set<std::string> files;
  for (const auto& [name, file] : index["weight_map"].items()) files.insert(file.get<std::string>());
  const std::regex shard_name("model-0000[1-9]-of-0000" + std::to_string(files.size()) + "\\.safetensors");
  int64_t total = 0;
  size_t seen = 0;
  for (const std::string& f : files) {
    EXPECT_TRUE(std::regex_match(f, shard_name)) << f;
    const StTensors part = read_st(dir.file("sharded/" + f));
    int64_t bytes = 0;
    for (const auto& [name, t] : part) {
      EXPECT_EQ(index["weight_map"][name], f) << name;
      EXPECT_EQ(t.raw, all.at(name).raw) << name;
      bytes += int64_t(t.raw.size());
    }
    EXPECT_TRUE(bytes <= 20000 || part.size() == 1) << f << " holds " << bytes << " bytes";
    total += bytes, seen += part.size();
  }
  EXPECT_GT(files.size(), 2u);
  EXPECT_EQ(seen, all.size());
  EXPECT_EQ(index["weight_map"].size(), all.size());
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), total);
  EXPECT_EQ(r.weight_bytes, total);
  auto a = import_run(dir.path, model, dir.file("sharded"));
  auto b = import_run(dir.path, model, dir.file("single"));
  const std::vector<float> la = trainer_logits(*a), lb = trainer_logits(*b);
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * 4), 0);
}

TEST(HfExport, Bf16RoundsEveryWeightToNearestEvenAndImportsExactly) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: diff";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("fp32"), {});
  HfExportOptions opt;
  opt.bf16 = true;
  export_hf(ck, dir.file("bf16"), opt);
  const HfDir f = read_hf_dir(dir.file("fp32")), h = read_hf_dir(dir.file("bf16"));
  EXPECT_EQ(h.config["torch_dtype"], "bfloat16");
  ASSERT_EQ(f.t.size(), h.t.size());
  for (const auto& [name, t] : f.t) {
    const StTensor& b = h.t.at(name);
    ASSERT_EQ(b.dtype, "BF16") << name;
    ASSERT_EQ(b.v.size(), t.v.size()) << name;
    for (size_t i = 0; i < t.v.size(); ++i)
      ASSERT_EQ(bf16_to_float(bf16_bits(float(t.v[i]))), float(b.v[i])) << name << "[" << i << "]";
  }
  auto tr = import_run(dir.path, model, dir.file("bf16"));
  const std::vector<double>& e = h.t.at("model.embed_tokens.weight").v;
  const Tensor got = tr->model().param("embed.weight");
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(got.f32()[i], float(e[size_t(i)])) << i;
}

// F16 read by its definition: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024.
TEST(HfImport, F16WeightsAreReadExactly) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: standard";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("hf"), {});
  StTensors t = read_st(dir.file("hf/model.safetensors"));
  StTensor& e = t.at("model.embed_tokens.weight");
  std::mt19937 rng(7);
  std::vector<double> want;
  e.dtype = "F16";
  e.raw.clear();
  for (size_t i = 0; i < e.v.size(); ++i) {
    uint16_t bits = uint16_t(rng());
    if (((bits >> 10) & 0x1f) == 31) bits &= 0xbfff;  // no inf or NaN
    if (i < 8) bits = uint16_t(i);                    // zero and subnormals
    const int s = bits >> 15, ex = (bits >> 10) & 0x1f, m = bits & 0x3ff;
    want.push_back((s ? -1 : 1) * (ex == 0 ? std::ldexp(m / 1024.0, -14) : std::ldexp(1 + m / 1024.0, ex - 15)));
    e.raw.push_back(uint8_t(bits & 0xff)), e.raw.push_back(uint8_t(bits >> 8));
  }
  write_st(dir.file("hf/model.safetensors"), t);
  auto tr = import_run(dir.path, model, dir.file("hf"));
  const Tensor got = tr->model().param("embed.weight");
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(double(got.f32()[i]), want[size_t(i)]) << i;
}

TEST(HfExport, OutputMustBeANewOrEmptyDirectory) {
  ScratchDir dir;
  const std::string ck = hf_tiny_checkpoint(dir.path, "n_heads: 2, n_kv_heads: 1, attention: diff");
  fs::create_directories(dir.file("full"));
  std::ofstream(dir.file("full/keep.txt")) << "mine";
  std::string why = error_of([&] { export_hf(ck, dir.file("full"), {}); });
  EXPECT_NE(why.find(dir.file("full") + " is a directory that is not empty"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos);
  EXPECT_EQ(slurp(dir.file("full/keep.txt")), "mine");
  std::ofstream(dir.file("afile")) << "x";
  why = error_of([&] { export_hf(ck, dir.file("afile"), {}); });
  EXPECT_NE(why.find("exists and is not a directory"), std::string::npos) << why;
  why = error_of([&] { export_hf(ck, ck + "/hf", {}); });
  EXPECT_NE(why.find("inside the checkpoint"), std::string::npos) << why;
  fs::create_directories(dir.file("empty"));
  export_hf(ck, dir.file("empty"), {});
  EXPECT_TRUE(fs::exists(dir.file("empty/model.safetensors")));
  for (const auto& entry : fs::directory_iterator(dir.path))  // no temporary left beside the outputs
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

// The one-line error of importing `hf` into the model `model`.
std::string import_error(const ScratchDir& dir, const std::string& model, const std::string& hf,
                         const std::vector<std::string>& overrides = {}) {
  const std::string why = error_of([&] { import_run(dir.path, model, hf, overrides); });
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  return why;
}

TEST(HfImport, MissingExtraAndMisShapedTensorsAreOneLineErrors) {
  ScratchDir dir;
  const std::string model = "n_heads: 2, n_kv_heads: 1, attention: diff";
  const std::string ck = hf_tiny_checkpoint(dir.path, model);
  export_hf(ck, dir.file("hf"), {});
  const std::string file = dir.file("hf/model.safetensors");
  const StTensors good = read_st(file);
  StTensors t = good;
  t.erase("model.layers.1.mlp.up_proj.weight");
  write_st(file, t);
  std::string why = import_error(dir, model, dir.file("hf"));
  EXPECT_NE(why.find(file + ": tensor model.layers.1.mlp.up_proj.weight is missing"), std::string::npos) << why;
  t = good;
  t["model.layers.0.self_attn.bogus"] = good.at("model.norm.weight");
  write_st(file, t);
  why = import_error(dir, model, dir.file("hf"));
  EXPECT_NE(why.find("tensor model.layers.0.self_attn.bogus is not a parameter"), std::string::npos) << why;
  t = good;
  t["model.layers.0.self_attn.k_proj.weight"].shape = {8, 32};  // [2·KV·d, D] is [16, 32]
  t["model.layers.0.self_attn.k_proj.weight"].raw.resize(8 * 32 * 4);
  write_st(file, t);
  why = import_error(dir, model, dir.file("hf"));
  EXPECT_NE(why.find("model.layers.0.self_attn.k_proj.weight has shape [8, 32], expected [16, 32]"),
            std::string::npos) << why;
  t = good;
  t["model.norm.weight"].raw.pop_back();  // data_offsets no longer hold [32] F32
  write_st(file, t);
  why = import_error(dir, model, dir.file("hf"));
  EXPECT_NE(why.find(file + ": tensor model.norm.weight: data_offsets"), std::string::npos) << why;
}

TEST(HfImport, ModelTypeAndConfigMismatchesAreOneLineErrors) {
  ScratchDir dir;
  const std::string diff = "n_heads: 2, n_kv_heads: 1, attention: diff";
  const std::string ck = hf_tiny_checkpoint(dir.path, diff);
  export_hf(ck, dir.file("hf"), {});
  const std::string cfg = dir.file("hf/config.json");
  const Json good = Json::parse(slurp(cfg));
  std::string why = import_error(dir, diff, dir.file("hf"), {"model.ffn_hidden=96"});
  EXPECT_NE(why.find(cfg + ": intermediate_size: 64 in config.json, 96 from the run's model.ffn_hidden"),
            std::string::npos) << why;
  why = import_error(dir, "n_heads: 2, n_kv_heads: 2, attention: diff", dir.file("hf"));
  EXPECT_NE(why.find("num_key_value_heads: 2 in config.json, 4 from the run's model.n_kv_heads"), std::string::npos)
      << why;
  why = import_error(dir, diff, dir.file("hf"), {"model.norm_eps=1.0e-6"});
  EXPECT_NE(why.find("rms_norm_eps: 1e-05 in config.json, 1e-06 from the run's model.norm_eps"), std::string::npos)
      << why;
  why = import_error(dir, "n_heads: 2, n_kv_heads: 1, attention: standard", dir.file("hf"));
  EXPECT_NE(why.find("model_type diffllama cannot initialise a model.attention: standard run"), std::string::npos)
      << why;
  Json j = good;
  j["model_type"] = "gpt2";
  std::ofstream(cfg) << j.dump();
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find("model_type 'gpt2': unsupported; expected diffllama (DiffLlama), llama (Llama) or difftron_diff_v2"),
            std::string::npos) << why;
  j["model_type"] = "llama";  // a Llama model into a diff run
  std::ofstream(cfg) << j.dump();
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find("model_type llama cannot initialise a model.attention: diff run"), std::string::npos) << why;
  j = good;
  j["rope_parameters"]["rope_theta"] = 500000.0;
  std::ofstream(cfg) << j.dump();
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find("rope_parameters.rope_theta: 500000.0 in config.json, 10000.0 from the run's model.rope_theta"),
            std::string::npos) << why;
  j.erase("rope_parameters");  // transformers 4.x: rope_theta at the top
  j["rope_theta"] = 20000.0;
  std::ofstream(cfg) << j.dump();
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find(": rope_theta: 20000.0 in config.json, 10000.0"), std::string::npos) << why;
  j["rope_theta"] = 10000.0;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  std::ofstream(cfg) << j.dump();
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find("a RoPE scaling ({\"rope_type\":\"linear\",\"factor\":2.0}): unsupported"), std::string::npos)
      << why;
  fs::remove(cfg);
  why = import_error(dir, diff, dir.file("hf"));
  EXPECT_NE(why.find(cfg + ": cannot open"), std::string::npos) << why;
}

}  // namespace
}  // namespace dt
