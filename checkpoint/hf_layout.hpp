// The mapping between difftron's parameters (DESIGN §2) and the Hugging Face
// transformers models DiffLlamaForCausalLM (attention: diff) and
// LlamaForCausalLM (attention: standard), and for attention: diff_v2 (which
// transformers lacks) the Llama layout plus self_attn.lambda_proj with
// model_type difftron_diff_v2 (query heads in DESIGN order), shared by `export --format hf` and
// `checkpoint.init_from: hf:DIR`. What transformers does (modeling_diffllama.py,
// modeling_llama.py), and how difftron's tensors become its tensors:
//   - sub-heads in halves: DiffLlama's query heads 0..H−1 are the first
//     sub-heads of the H differential heads, H..2H−1 the second; kv heads
//     0..KV−1 the first, KV..2KV−1 the second; the value of differential head
//     h is [v_g, v_{g+KV}] (g = h / (H/KV)). difftron interleaves: sub-heads
//     2h, 2h+1 of q and 2g, 2g+1 of k, and V head g is the 2d rows
//     [g·2d, g·2d+2d) of Wv. So q row (2h+s)·d+i ↔ HF row (s·H+h)·d+i', k row
//     (2g+s)·d+i ↔ (s·KV+g)·d+i', v row g·2d+s·d+j ↔ (s·KV+g)·d+j.
//   - RoPE: HF's rotate_half pairs dimensions (m, m+d/2), difftron pairs
//     (2m, 2m+1), both at angle pos·θ^(−2m/d): i' = i/2 for even i, d/2+(i−1)/2
//     for odd i, within every q and k head (Llama's too).
//   - HF's per-head norm (groupnorm) has no weight: export folds g_sub into
//     the columns of o_proj (column h·2d+j times g_sub[j]; exact, the norm's
//     output feeds only o_proj); import sets g_sub = 1.
//   - λ_init = 0.8 − 0.6·exp(−0.3·l) from the 0-based layer index and the
//     (1 − λ_init) factor are the same on both sides; the λ vectors copy as
//     they are.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/json.hpp"
#include "model/registry.hpp"

namespace dt {

// The HF model a difftron model becomes; hf_layout refuses (one line) a
// model HF cannot represent.
struct HfLayout {
  std::string model_type;    // "diffllama", "llama" or "difftron_diff_v2" (no transformers class)
  std::string architecture;  // "DiffLlamaForCausalLM", "LlamaForCausalLM", "DifftronDiffV2ForCausalLM"
  bool diff = false, v2 = false;
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;  // as HF counts them (diff: sub-heads, 2H and 2KV)
  int64_t config_heads = 0;  // config.json's num_attention_heads: q_heads, or H for diff_v2
};
HfLayout hf_layout(const ModelConfig& m);

// Where one difftron parameter lives in the HF model.
struct HfTensor {
  std::string name;           // HF name; "" for g_sub (no HF tensor)
  std::vector<int64_t> rows;  // rows[r]: the HF row holding difftron row r; empty = the same row
  bool fold_subln = false;    // o_proj = Wo · diag(g_sub repeated per head) (diff export)
};
HfTensor hf_tensor(const HfLayout& L, const ParamSpec& spec);

// config.json for the model of `cfg` (max_position_embeddings: train.seq_len).
// torch_dtype: "float32" or "bfloat16"; bos/eos ids: < 0 leaves them out.
Json hf_config_json(const Config& cfg, const std::string& torch_dtype, int64_t bos_id, int64_t eos_id);

// Checks an HF config.json (read from `where`) against the run's model:
// model_type (llama into a diff run is refused), every size, rms_norm_eps,
// rope_theta, tie_word_embeddings and what difftron cannot run (biases, a RoPE
// scaling, another activation). Fails with one line naming the field and both
// values.
void check_hf_config(const Json& config, const ModelConfig& m, const std::string& where);

}  // namespace dt
