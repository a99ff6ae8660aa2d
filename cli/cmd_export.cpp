// difftron export PATH --format safetensors OUT
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "cli/commands.hpp"
#include "checkpoint/checkpoint_export.hpp"

namespace dt {

static const char* kExportUsage =
    "usage: difftron export PATH --format safetensors OUT\n"
    "\n"
    "Writes the model weights of a checkpoint (no optimizer state) to one file.\n"
    "safetensors: fp32, matrices [out, in] row-major, tensor names as in DESIGN §2\n"
    "(embed.weight, layers.{l}.attn.q_proj.weight, ..., lm_head.weight; with tied\n"
    "embeddings only embed.weight); __metadata__ holds format \"pt\", the model\n"
    "config as JSON (difftron_config) and the step. OUT is written as a new\n"
    "OUT.tmp.<pid>.<ns> beside it and renamed, so an existing OUT is replaced only by\n"
    "a complete file; OUT may not be a symlink, device or directory, nor lie inside\n"
    "the checkpoint read.\n"
    "\n"
    "  PATH          a step_<N> checkpoint directory, or a checkpoint root (then\n"
    "                the newest complete checkpoint in it)\n"
    "  --format FMT  output format; supported: safetensors (the default)\n"
    "  OUT           the file to write\n"
    "  --help        show this help\n";

int cmd_export(int argc, char** argv) {
  std::string path, out, format = "safetensors";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kExportUsage, stdout);
      return 0;
    } else if (a == "--format") {
      if (i + 1 >= argc) fail("--format needs a value (supported: safetensors)");
      format = argv[++i];
    } else if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '", a, "' (expected --format safetensors or --help)");
    } else if (path.empty()) {
      path = a;
    } else if (out.empty()) {
      out = a;
    } else {
      fail("unexpected argument '", a, "' (expected PATH and OUT)");
    }
  }
  if (format != "safetensors") fail("--format ", format, ": unsupported (supported formats: safetensors)");
  if (path.empty() || out.empty())
    fail("missing ", path.empty() ? "PATH" : "OUT", " (usage: difftron export PATH --format safetensors OUT)");

  const std::string used = export_safetensors(path, out);
  std::printf("exported %s to %s (safetensors, %lld bytes)\n", used.c_str(), out.c_str(),
              static_cast<long long>(std::filesystem::file_size(out)));
  return 0;
}

}  // namespace dt
