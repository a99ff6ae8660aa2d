// difftron: one binary, one subcommand per job.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "core/error.hpp"
#include "cli/commands.hpp"

namespace {

const char* kUsage =
    "usage: difftron <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG.yaml [--set key=value ...]   train a model from a YAML config\n"
    "  prepare --input PATH... --output DIR      tokenize text into HDF5 shards\n"
    "  tokenize --tokenizer FILE|byte [--decode] text on stdin to token ids (or back)\n"
    "  inspect PATH                              what a checkpoint holds; verifies its checksums\n"
    "  export PATH --format safetensors OUT      a checkpoint's weights as one safetensors file\n"
    "  eval CKPT --data PATH [--nll-by-position] perplexity (and NLL by position) of a checkpoint\n"
    "  generate CKPT --prompt TEXT               sample a continuation (KV cache; top-k, top-p, greedy)\n"
    "  report --run NAME=DIR --eval NAME=DIR ... side-by-side report of evaluated runs (Markdown + PNG)\n"
    "\n"
    "Run 'difftron <command> --help' for a command's options.\n";

// One line from the failing rank, then every rank of the job goes down
// (MPI_Abort), so no peer hangs waiting for it.
[[noreturn]] void report_and_exit(const std::string& cmd, const char* kind, const char* what) {
  if (dt::mpi_world_size() > 1)
    std::fprintf(stderr, "difftron %s: %s on rank %d: %s\n", cmd.c_str(), kind, dt::mpi_world_rank(), what);
  else
    std::fprintf(stderr, "difftron %s: %s: %s\n", cmd.c_str(), kind, what);
  std::fflush(stderr);
  dt::mpi_abort_job(1);
}

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
    if (cmd == "tokenize") return dt::cmd_tokenize(argc - 1, argv + 1);
    if (cmd == "inspect") return dt::cmd_inspect(argc - 1, argv + 1);
    if (cmd == "export") return dt::cmd_export(argc - 1, argv + 1);
    if (cmd == "eval") return dt::cmd_eval(argc - 1, argv + 1);
    if (cmd == "generate") return dt::cmd_generate(argc - 1, argv + 1);
    if (cmd == "report") return dt::cmd_report(argc - 1, argv + 1);
    std::fprintf(stderr,
                 "difftron: unknown command '%s' (expected train, prepare, tokenize, inspect, export, eval, generate or report; "
                 "see difftron --help)\n",
                 cmd.c_str());
    return 2;
  } catch (const dt::Error& e) {
    report_and_exit(cmd, "error", e.what());
  } catch (const std::exception& e) {
    report_and_exit(cmd, "internal error", e.what());
  }
}
