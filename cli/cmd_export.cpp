// difftron export PATH --format safetensors OUT
// difftron export PATH --format hf OUT_DIR [--dtype bf16|fp32] [--max-shard-size SIZE]
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "checkpoint/checkpoint_export.hpp"
#include "checkpoint/hf_export.hpp"

namespace dt {

int cmd_export(int argc, char** argv) {
  std::string path, out, format = "safetensors", dtype;
  std::string shard_size;
  CommandLine cl("export",
                 "usage: difftron export PATH --format safetensors OUT\n"
                 "       difftron export PATH --format hf OUT_DIR [--dtype bf16|fp32] [--max-shard-size SIZE]\n",
                 "Writes the model weights of a checkpoint (no optimizer state).\n"
                 "safetensors: one file, fp32, matrices [out, in] row-major, tensor names as in\n"
                 "DESIGN §2 (embed.weight, layers.{l}.attn.q_proj.weight, ..., lm_head.weight; with\n"
                 "tied embeddings only embed.weight); __metadata__ holds format \"pt\", the model\n"
                 "config as JSON (difftron_config) and the step. OUT is written as a new\n"
                 "OUT.tmp.<pid>.<ns> beside it and renamed, so an existing OUT is replaced only by\n"
                 "a complete file; OUT may not be a symlink, device or directory, nor lie inside\n"
                 "the checkpoint read.\n"
                 "hf: a Hugging Face transformers model directory: attention diff becomes\n"
                 "DiffLlamaForCausalLM (model_type diffllama), standard LlamaForCausalLM; the\n"
                 "weights are permuted to transformers' layout (sub-heads in halves, rotate_half\n"
                 "RoPE) and g_sub folded into o_proj, so the model computes the same function.\n"
                 "OUT_DIR gets config.json, generation_config.json, model.safetensors (or\n"
                 "model-0000i-of-0000N.safetensors + model.safetensors.index.json above\n"
                 "--max-shard-size) and the run's tokenizer.json if it used one. It is written as\n"
                 "a new directory beside OUT_DIR and renamed; OUT_DIR must not exist or be empty.\n");
  cl.positional("PATH", path,
                "a step_<N> checkpoint directory, or a checkpoint root (then\n"
                "the newest complete checkpoint in it)");
  cl.positional("OUT", out, "the file (safetensors) or directory (hf) to write");
  cl.value("--format", "FMT", "output format: safetensors (the default) or hf", [&](const std::string& v) {
    if (v != "safetensors" && v != "hf")
      throw UsageError("--format " + v + ": unsupported (supported formats: safetensors, hf)");
    format = v;
  });
  cl.value("--dtype", "DTYPE", "hf only: weight dtype, fp32 (the default) or bf16 (round to nearest even)",
           [&](const std::string& v) {
             if (v != "fp32" && v != "bf16") throw UsageError("--dtype " + v + ": expected fp32 or bf16");
             dtype = v;
           });
  cl.text("--max-shard-size", shard_size, "SIZE", "hf only: largest weight file, e.g. 5GB (the default), 500MB");
  if (!cl.parse(argc, argv)) return 0;
  if (path.empty() || out.empty())
    throw UsageError("missing " + std::string(path.empty() ? "PATH" : "OUT") +
                     " (usage: difftron export PATH --format safetensors|hf OUT)");
  if (format != "hf" && (!dtype.empty() || !shard_size.empty()))
    throw UsageError(std::string(dtype.empty() ? "--max-shard-size" : "--dtype") + " applies to --format hf only");

  if (format == "hf") {
    HfExportOptions opt;
    opt.bf16 = dtype == "bf16";
    if (!shard_size.empty()) opt.max_shard_bytes = parse_byte_size(shard_size);
    const HfExportResult r = export_hf(path, out, opt);
    std::printf("exported %s to %s (hf, %s, %zu files, %lld weight bytes)\n", r.checkpoint.c_str(), out.c_str(),
                opt.bf16 ? "bf16" : "fp32", r.files.size(), static_cast<long long>(r.weight_bytes));
    std::printf("%s\n", r.tokenizer_note.c_str());
    return 0;
  }
  const std::string used = export_safetensors(path, out);
  std::printf("exported %s to %s (safetensors, %lld bytes)\n", used.c_str(), out.c_str(),
              static_cast<long long>(std::filesystem::file_size(out)));
  return 0;
}

}  // namespace dt
