// difftron train CONFIG.yaml [--set key=value ...]
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "cli/commands.hpp"
#include "trainer/trainer.hpp"

namespace dt {

static const char* kTrainUsage =
    "usage: difftron train CONFIG.yaml [--set section.key=value ...]\n"
    "\n"
    "Trains the model described by CONFIG.yaml (sections model, train, data,\n"
    "parallel, checkpoint, runtime; see configs/tiny.yaml). Prints a progress line\n"
    "per step and appends the same as JSON lines to <train.run_dir>/metrics.jsonl.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE   override a config value, e.g. --set train.max_steps=50\n"
    "  --resume auto|DIR continue from a checkpoint: auto = the newest complete one in\n"
    "                    checkpoint.dir whose checksums verify (a fresh start if there is\n"
    "                    none; an error if there are only damaged ones), or a step_<N>\n"
    "                    directory. The seed, batch shape, data mix and model must match\n"
    "                    the checkpoint's; use checkpoint.init_from to start a new stage\n"
    "  --force           start fresh even if train.run_dir or checkpoint.dir holds another\n"
    "                    run: removes its metrics.jsonl, config.yaml and checkpoints\n"
    "  --help            show this help\n"
    "\n"
    "A fresh run refuses a run directory or checkpoint directory that holds another\n"
    "run. The last step is always saved (with checkpoint.dir set). SIGTERM, SIGUSR1\n"
    "and ctrl-C finish the step, save and exit; a second ctrl-C exits at once. A\n"
    "rank whose step makes no progress for runtime.step_timeout_s ends the job\n"
    "(exit code 75) so that a restart with --resume auto continues.\n";

int cmd_train(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string resume;
  bool force = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kTrainUsage, stdout);
      return 0;
    } else if (a == "--set") {
      if (i + 1 >= argc) fail("--set needs KEY=VALUE (e.g. --set train.max_steps=50)");
      overrides.push_back(argv[++i]);
    } else if (a == "--resume") {
      if (i + 1 >= argc) fail("--resume needs auto or a checkpoint directory");
      resume = argv[++i];
    } else if (a == "--force") {
      force = true;
    } else if (a.rfind("--set=", 0) == 0) {
      overrides.push_back(a.substr(6));
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '", a, "' (expected --set KEY=VALUE, --resume auto|DIR, --force or --help)");
    } else if (config_path.empty()) {
      config_path = a;
    } else {
      fail("unexpected argument '", a, "' (one CONFIG.yaml expected)");
    }
  }
  if (config_path.empty()) fail("missing CONFIG.yaml (usage: difftron train CONFIG.yaml [--set key=value ...])");
  Config cfg = load_config_file(config_path, overrides);
  Trainer trainer(cfg);
  trainer.set_force(force);
  if (!resume.empty()) trainer.resume(resume);
  trainer.run();
  return 0;
}

}  // namespace dt
