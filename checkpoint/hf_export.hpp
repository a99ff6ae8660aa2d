// `difftron export CKPT --format hf OUT_DIR`: a checkpoint as a Hugging Face
// transformers model directory (DiffLlamaForCausalLM for attention: diff,
// LlamaForCausalLM for standard; the mapping in hf_layout.hpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

struct HfExportOptions {
  bool bf16 = false;                     // weights in BF16 (rounded to nearest even), else F32
  int64_t max_shard_bytes = 5000000000;  // above this, model-0000i-of-0000N.safetensors + index
};

struct HfExportResult {
  std::string checkpoint;          // the step directory read
  std::vector<std::string> files;  // written into OUT_DIR, in order
  int64_t weight_bytes = 0;        // tensor data (the index's metadata.total_size)
  std::string tokenizer_note;      // what was done about the tokenizer, one line
};

// Writes config.json, generation_config.json, the weights (model.safetensors,
// or shards of at most max_shard_bytes each, a larger tensor alone in its
// shard, and model.safetensors.index.json) and tokenizer.json when the run's
// data.tokenizer is one. Everything goes into a new directory beside out_dir,
// renamed to out_dir at the end; out_dir must not exist or be an empty
// directory, outside the checkpoint. One-line dt::Errors otherwise.
HfExportResult export_hf(const std::string& ckpt, const std::string& out_dir, const HfExportOptions& opt);

// "5GB" → 5·10^9, "500MB", "64KiB" → 65536, "1000" → 1000 bytes (the units
// transformers' max_shard_size takes: KB, MB, GB decimal; KiB, MiB, GiB binary).
int64_t parse_byte_size(const std::string& text);

}  // namespace dt
