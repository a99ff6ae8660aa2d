// Reading a checkpoint back out as a model: `difftron inspect` and
// `difftron export` (DESIGN §2 export names, §6 checkpoints).
#pragma once
#include <string>
#include <vector>

#include "core/config.hpp"
#include "model/registry.hpp"
#include "checkpoint/checkpoint.hpp"

namespace dt {

// A checkpoint opened for reading its model: files verified (size and crc32),
// the stored config parsed, and every registry tensor present with its
// registry shape and nothing else stored.
struct CheckpointModel {
  CheckpointReader reader;
  Config config;                    // the config the run was saved with
  std::vector<ParamSpec> registry;  // param_registry(config.model), in model order
};

// `path` is a step directory (holding manifest.yaml) or a checkpoint root, in
// which case the newest complete checkpoint in it. Throws dt::Error naming
// the path, file or tensor that is wrong.
CheckpointModel open_checkpoint_model(const std::string& path);

// The model config as one JSON object: vocab_size, d_model, n_layers, n_heads,
// n_kv_heads, head_dim, ffn_hidden, rope_theta, norm_eps, attention, tie_embeddings.
std::string model_config_json(const ModelConfig& m);

// Fails unless `out` lies outside the checkpoint directory ckpt_dir (an
// export never writes into what it reads).
void check_outside_checkpoint(const std::string& ckpt_dir, const std::string& out);

// Writes every parameter of the checkpoint at `ckpt` (a step directory or a
// root, as above) to one safetensors file `out`: fp32, [out, in] row-major,
// registry names in registry order; __metadata__ holds format "pt",
// difftron_config (model_config_json) and step. `out` is replaced by a rename,
// never written through: it must be absent or a regular file (not a symlink,
// device or directory) and outside the checkpoint directory read. Returns the
// checkpoint used.
std::string export_safetensors(const std::string& ckpt, const std::string& out);

}  // namespace dt
