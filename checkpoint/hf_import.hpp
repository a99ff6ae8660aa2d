// Reading a Hugging Face DiffLlama or Llama model directory as difftron
// parameters (`checkpoint.init_from: hf:DIR`; the mapping in hf_layout.hpp):
// config.json, and the weights as model.safetensors or as the shards that
// model.safetensors.index.json names, in F32, BF16 or F16.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "checkpoint/hf_layout.hpp"
#include "checkpoint/safetensors_reader.hpp"
#include "model/registry.hpp"

namespace dt {

class HfCheckpoint {
 public:
  // Checks config.json against `m` (check_hf_config) and that the weights hold
  // exactly the tensors the model needs, each with its shape (only headers are
  // read). Failures are one line naming the file and the tensor or field.
  HfCheckpoint(const std::string& dir, const ModelConfig& m);
  const std::string& dir() const { return dir_; }
  // Elements of `slice` of difftron parameter `spec` (row-major within the
  // slice, slice.numel() floats) into out, the inverse mapping applied: HF
  // rows permuted back; g_sub (no HF tensor) all ones.
  void read(const ParamSpec& spec, const TpSlice& slice, float* out) const;
  // Notes for the log (e.g. a stored lm_head.weight that tying ignores).
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  std::string dir_;
  HfLayout layout_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // HF tensor name → index in files_
  std::vector<std::string> notes_;
};

}  // namespace dt
