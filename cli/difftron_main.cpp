// difftron: one binary, one subcommand per job. Each subcommand parses its own
// options (cli/cli_args.hpp); this file picks the subcommand and turns what
// it throws into one line on stderr and the exit code: 2 for a bad command
// line, 1 for bad input, 1 with "internal error" for a bug.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "core/error.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* synopsis;  // the line in `difftron --help`
};

const Command kCommands[] = {
    {"train", dt::cmd_train, "train CONFIG.yaml [--set key=value ...]   train a model from a YAML config"},
    {"prepare", dt::cmd_prepare, "prepare --input PATH... --output DIR      tokenize text into HDF5 shards"},
    {"tokenize", dt::cmd_tokenize, "tokenize --tokenizer FILE|byte [--decode] text on stdin to token ids (or back)"},
    {"inspect", dt::cmd_inspect, "inspect PATH                              what a checkpoint holds; verifies its checksums"},
    {"export", dt::cmd_export, "export PATH --format safetensors OUT      a checkpoint's weights as one safetensors file"},
    {"eval", dt::cmd_eval, "eval CKPT --data PATH [--nll-by-position] perplexity (and NLL by position) of a checkpoint"},
    {"generate", dt::cmd_generate, "generate CKPT --prompt TEXT               sample a continuation (KV cache; top-k, top-p, greedy)"},
    {"report", dt::cmd_report, "report --run NAME=DIR --eval NAME=DIR ... side-by-side report of evaluated runs (Markdown + PNG)"},
};

std::string usage() {
  std::string u = "usage: difftron <command> [options]\n\ncommands:\n";
  for (const Command& c : kCommands) u += std::string("  ") + c.synopsis + "\n";
  return u + "\nRun 'difftron <command> --help' for a command's options.\n";
}

// One line from the failing rank, then every rank of the job goes down
// (MPI_Abort), so no peer hangs waiting for it.
[[noreturn]] void report_and_exit(const std::string& cmd, const char* kind, const char* what, int code) {
  const std::string line = dt::error_line(cmd, kind, what, dt::mpi_world_rank(), dt::mpi_world_size());
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  dt::mpi_abort_job(code);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  for (const Command& c : kCommands) {
    if (cmd != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const dt::UsageError& e) {
      report_and_exit(cmd, "error", e.what(), 2);
    } catch (const dt::InternalError& e) {
      report_and_exit(cmd, "internal error", e.what(), 1);
    } catch (const dt::Error& e) {
      report_and_exit(cmd, "error", e.what(), 1);
    } catch (const std::exception& e) {
      report_and_exit(cmd, "internal error", e.what(), 1);
    }
  }
  std::string names;
  for (size_t i = 0; i < std::size(kCommands); ++i)
    names += std::string(i == 0 ? "" : i + 1 == std::size(kCommands) ? " or " : ", ") + kCommands[i].name;
  std::fprintf(stderr, "difftron: unknown command '%s' (expected %s; see difftron --help)\n", cmd.c_str(),
               names.c_str());
  return 2;
}
