// difftron: one binary, one subcommand per job.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/error.hpp"
#include "tools/commands.hpp"

namespace {

const char* kUsage =
    "usage: difftron <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG.yaml [--set key=value ...]   train a model from a YAML config\n"
    "  prepare --input PATH... --output DIR      tokenize text into HDF5 shards\n"
    "\n"
    "Run 'difftron <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "train") return dt::cmd_train(argc - 1, argv + 1);
    if (cmd == "prepare") return dt::cmd_prepare(argc - 1, argv + 1);
    std::fprintf(stderr, "difftron: unknown command '%s' (expected train or prepare; see difftron --help)\n",
                 cmd.c_str());
    return 2;
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "difftron %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "difftron %s: internal error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
