// difftron export PATH --format safetensors OUT
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "checkpoint/checkpoint_export.hpp"

namespace dt {

int cmd_export(int argc, char** argv) {
  std::string path, out;
  CommandLine cl("export", "usage: difftron export PATH --format safetensors OUT\n",
                 "Writes the model weights of a checkpoint (no optimizer state) to one file.\n"
                 "safetensors: fp32, matrices [out, in] row-major, tensor names as in DESIGN §2\n"
                 "(embed.weight, layers.{l}.attn.q_proj.weight, ..., lm_head.weight; with tied\n"
                 "embeddings only embed.weight); __metadata__ holds format \"pt\", the model\n"
                 "config as JSON (difftron_config) and the step. OUT is written as a new\n"
                 "OUT.tmp.<pid>.<ns> beside it and renamed, so an existing OUT is replaced only by\n"
                 "a complete file; OUT may not be a symlink, device or directory, nor lie inside\n"
                 "the checkpoint read.\n");
  cl.positional("PATH", path,
                "a step_<N> checkpoint directory, or a checkpoint root (then\n"
                "the newest complete checkpoint in it)");
  cl.positional("OUT", out, "the file to write");
  cl.value("--format", "FMT", "output format; supported: safetensors (the default)", [&](const std::string& v) {
    if (v != "safetensors") throw UsageError("--format " + v + ": unsupported (supported formats: safetensors)");
  });
  if (!cl.parse(argc, argv)) return 0;
  if (path.empty() || out.empty())
    throw UsageError("missing " + std::string(path.empty() ? "PATH" : "OUT") +
                     " (usage: difftron export PATH --format safetensors OUT)");

  const std::string used = export_safetensors(path, out);
  std::printf("exported %s to %s (safetensors, %lld bytes)\n", used.c_str(), out.c_str(),
              static_cast<long long>(std::filesystem::file_size(out)));
  return 0;
}

}  // namespace dt
