#include "checkpoint/hf_layout.hpp"

#include <cmath>
#include <map>

#include "core/config_schema.hpp"
#include "core/error.hpp"
#include "model/layer.hpp"

namespace dt {

HfLayout hf_layout(const ModelConfig& m) {
  // Head counts as the model runs them (attn_geometry), never derived here.
  const AttnGeometry g = attn_geometry(m);
  HfLayout L;
  switch (m.attention) {
    case AttentionKind::Diff:
      L.model_type = "diffllama", L.architecture = "DiffLlamaForCausalLM", L.diff = true;
      // DiffLlama builds V of head h from kv heads g and g+KV (g = h·KV/H): the
      // grouping difftron uses whenever H % KV == 0, which the config requires.
      if (g.maps != 2 || g.dv != 2 * g.d || g.heads % g.kv != 0)
        fail("Hugging Face format: attention diff with ", g.heads, " heads and ", g.kv,
             " kv heads has no DiffLlama layout; expected heads a multiple of kv heads");
      break;
    case AttentionKind::Standard:
      L.model_type = "llama", L.architecture = "LlamaForCausalLM";
      if (g.maps != 1 || g.dv != g.d || g.heads % g.kv != 0)
        fail("Hugging Face format: attention standard with ", g.heads, " heads and ", g.kv,
             " kv heads has no Llama layout; expected heads a multiple of kv heads");
      break;
    case AttentionKind::DiffV2:
      // transformers has no class for DIFF V2: the Llama layout (names, RoPE
      // pairing) plus self_attn.lambda_proj, under a model_type of our own.
      L.model_type = "difftron_diff_v2", L.architecture = "DifftronDiffV2ForCausalLM", L.v2 = true;
      break;
  }
  L.q_heads = g.heads * g.maps;
  L.kv_heads = g.kv * g.maps;
  L.head_dim = g.d;
  L.config_heads = L.v2 ? g.out_heads : L.q_heads;
  return L;
}

namespace {

// HF row of q/k row r: heads of `maps` sub-heads of d rows, `n` heads.
int64_t qk_row(int64_t r, int64_t n, int maps, int64_t d) {
  const int64_t sub = r / d, i = r % d, h = sub / maps, s = sub % maps;
  const int64_t rope = i % 2 == 0 ? i / 2 : d / 2 + i / 2;  // (2m, 2m+1) → (m, m + d/2)
  return (s * n + h) * d + rope;
}

// HF row of v row r: kv heads of dv = maps·d rows; part s of head g is HF kv head s·kv + g.
int64_t v_row(int64_t r, int64_t kv, int maps, int64_t d) {
  const int64_t g = r / (maps * d), s = (r % (maps * d)) / d, j = r % d;
  return (s * kv + g) * d + j;
}

const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> names = {
      {"attn_norm.weight", "input_layernorm.weight"},    {"attn.q_proj.weight", "self_attn.q_proj.weight"},
      {"attn.k_proj.weight", "self_attn.k_proj.weight"}, {"attn.v_proj.weight", "self_attn.v_proj.weight"},
      {"attn.out_proj.weight", "self_attn.o_proj.weight"}, {"attn.lambda_q1", "self_attn.lambda_q1"},
      {"attn.lambda_k1", "self_attn.lambda_k1"},         {"attn.lambda_q2", "self_attn.lambda_q2"},
      {"attn.lambda_k2", "self_attn.lambda_k2"},         {"attn.subln.weight", ""},
      {"mlp_norm.weight", "post_attention_layernorm.weight"}, {"mlp.w1.weight", "mlp.gate_proj.weight"},
      {"mlp.w2.weight", "mlp.down_proj.weight"},         {"mlp.w3.weight", "mlp.up_proj.weight"},
      {"attn.lambda_proj.weight", "self_attn.lambda_proj.weight"}};
  return names;
}

}  // namespace

HfTensor hf_tensor(const HfLayout& L, const ParamSpec& spec) {
  HfTensor t;
  if (spec.name == "embed.weight") return t.name = "model.embed_tokens.weight", t;
  if (spec.name == "final_norm.weight") return t.name = "model.norm.weight", t;
  if (spec.name == "lm_head.weight") return t.name = "lm_head.weight", t;
  const std::string pre = "layers." + std::to_string(spec.layer) + ".";
  const auto it = spec.name.rfind(pre, 0) == 0 ? layer_names().find(spec.name.substr(pre.size())) : layer_names().end();
  if (it == layer_names().end())
    fail("Hugging Face format: parameter ", spec.name, " has no counterpart in the ", L.architecture, " model");
  if (!it->second.empty()) t.name = "model." + pre + it->second;
  const int maps = L.diff ? 2 : 1;
  const int64_t d = L.head_dim, rows = spec.shape[0];
  const std::string& what = it->first;
  if (what == "attn.q_proj.weight" || what == "attn.k_proj.weight") {
    const int64_t n = (what[5] == 'q' ? L.q_heads : L.kv_heads) / maps;
    for (int64_t r = 0; r < rows; ++r) t.rows.push_back(qk_row(r, n, maps, d));
  } else if (what == "attn.v_proj.weight" && L.diff) {
    for (int64_t r = 0; r < rows; ++r) t.rows.push_back(v_row(r, L.kv_heads / maps, maps, d));
  }
  t.fold_subln = L.diff && what == "attn.out_proj.weight";
  return t;
}

Json hf_config_json(const Config& cfg, const std::string& torch_dtype, int64_t bos_id, int64_t eos_id) {
  const ModelConfig& m = cfg.model;
  const HfLayout L = hf_layout(m);
  Json j = Json::object();
  j["architectures"] = Json::array({L.architecture});
  j["model_type"] = L.model_type;
  j["vocab_size"] = m.vocab_size;
  j["hidden_size"] = m.d_model;
  j["intermediate_size"] = m.ffn_hidden;
  j["num_hidden_layers"] = m.n_layers;
  j["num_attention_heads"] = L.config_heads;
  if (L.v2) j["num_query_heads"] = L.q_heads;  // 2H: query heads 2h, 2h+1 feed output head h
  j["num_key_value_heads"] = L.kv_heads;
  j["head_dim"] = L.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = cfg.train.seq_len;
  j["rms_norm_eps"] = m.norm_eps;
  // RoPE as transformers 4.x reads it (rope_theta, rope_scaling) and as 5.x does (rope_parameters).
  j["rope_theta"] = m.rope_theta;
  j["rope_scaling"] = nullptr;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", m.rope_theta}};
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  if (L.diff) j["lambda_std_dev"] = 0.1;  // the λ init of DESIGN §2
  else j["mlp_bias"] = false;
  j["initializer_range"] = m.init_std;
  j["tie_word_embeddings"] = m.tie_embeddings;
  if (bos_id >= 0) j["bos_token_id"] = bos_id;
  if (eos_id >= 0) j["eos_token_id"] = eos_id;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  return j;
}

namespace {

// config[key] as a number (HF's default when absent and `dflt` is given).
double number_field(const Json& c, const std::string& key, const std::string& where, const double* dflt = nullptr) {
  if (!c.contains(key) || c[key].is_null()) {
    if (dflt) return *dflt;
    fail(where, ": ", key, ": missing; expected a number");
  }
  if (!c[key].is_number()) fail(where, ": ", key, ": ", json_kind(c[key]), ", expected a number");
  return c[key].get<double>();
}

// A count as an integer (64), any other number as JSON writes it (1e-05, 10000.0).
std::string number_text(double v, bool count) { return count ? std::to_string(int64_t(v)) : json_text_of(Json(v)); }

void expect_equal(const std::string& where, const std::string& key, double got, double want, const std::string& from) {
  const bool count = key.find("eps") == std::string::npos && key.find("theta") == std::string::npos &&
                     got == std::floor(got) && std::abs(got) < 9e15;
  if (got != want)
    fail(where, ": ", key, ": ", number_text(got, count), " in config.json, ", number_text(want, count),
         " from the run's ", from);
}

}  // namespace

void check_hf_config(const Json& c, const ModelConfig& m, const std::string& where) {
  if (!c.is_object()) fail(where, ": ", json_kind(c), ", expected a JSON object");
  const std::string type = c.contains("model_type") && c["model_type"].is_string() ? c["model_type"].get<std::string>() : "";
  if (type != "diffllama" && type != "llama" && type != "difftron_diff_v2")
    fail(where, ": model_type ", type.empty() ? "missing" : "'" + type + "'",
         ": unsupported; expected diffllama (DiffLlama), llama (Llama) or difftron_diff_v2");
  const HfLayout L = hf_layout(m);
  if (type != L.model_type)
    fail(where, ": model_type ", type, " cannot initialise a model.attention: ",
         config_schema::choice_name(config_schema::kAttention, m.attention), " run (expected ", L.model_type,
         type == "llama" ? "; a Llama model has no λ or differential heads to convert from)" : ")");
  const double heads = number_field(c, "num_attention_heads", where);
  const double hidden = number_field(c, "hidden_size", where);
  const double eps_dflt = L.diff ? 1e-5 : 1e-6, theta_dflt = 10000.0;
  const struct {
    const char* key;
    double want;
    const char* from;
    const double* dflt;
  } fields[] = {
      {"vocab_size", double(m.vocab_size), "model.vocab_size", nullptr},
      {"hidden_size", double(m.d_model), "model.d_model", nullptr},
      {"intermediate_size", double(m.ffn_hidden), "model.ffn_hidden", nullptr},
      {"num_hidden_layers", double(m.n_layers), "model.n_layers", nullptr},
      {"num_attention_heads", double(L.config_heads), "model.n_heads (as HF counts heads)", nullptr},
      {"num_key_value_heads", double(L.kv_heads), "model.n_kv_heads (as HF counts heads)", &heads},
      {"rms_norm_eps", m.norm_eps, "model.norm_eps", &eps_dflt},
  };
  for (const auto& f : fields) expect_equal(where, f.key, number_field(c, f.key, where, f.dflt), f.want, f.from);
  const double head_dim_dflt = hidden / heads;
  expect_equal(where, "head_dim", number_field(c, "head_dim", where, &head_dim_dflt), double(L.head_dim),
               "model (d_model / heads)");
  // RoPE: rope_theta at the top (transformers 4.x) or in rope_parameters (5.x); no scaling.
  const Json* rope = c.contains("rope_parameters") && c["rope_parameters"].is_object() ? &c["rope_parameters"] : nullptr;
  expect_equal(where, rope ? "rope_parameters.rope_theta" : "rope_theta",
               number_field(rope ? *rope : c, "rope_theta", where, &theta_dflt), m.rope_theta, "model.rope_theta");
  for (const Json* scaling : {c.contains("rope_scaling") ? &c["rope_scaling"] : nullptr, rope})
    if (scaling && !scaling->is_null() &&
        !(scaling->contains("rope_type") && (*scaling)["rope_type"] == "default"))
      fail(where, ": a RoPE scaling (", json_text_of(*scaling), "): unsupported; difftron runs plain RoPE");
  const auto flag = [&](const char* key, bool dflt) {
    if (!c.contains(key) || c[key].is_null()) return dflt;
    if (!c[key].is_boolean()) fail(where, ": ", key, ": ", json_kind(c[key]), ", expected true or false");
    return c[key].get<bool>();
  };
  if (flag("tie_word_embeddings", false) != m.tie_embeddings)
    fail(where, ": tie_word_embeddings: ", flag("tie_word_embeddings", false) ? "true" : "false",
         " in config.json, ", m.tie_embeddings ? "true" : "false", " from the run's model.tie_embeddings");
  for (const char* key : {"attention_bias", "mlp_bias"})
    if (flag(key, false)) fail(where, ": ", key, ": true; difftron's linear layers have no bias");
  if (c.contains("hidden_act") && c["hidden_act"] != "silu")
    fail(where, ": hidden_act: ", json_text_of(c["hidden_act"]), "; difftron's MLP is SwiGLU (expected \"silu\")");
}

}  // namespace dt
