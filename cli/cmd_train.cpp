// difftron train CONFIG.yaml [--set key=value ...]
#include <string>
#include <vector>

#include "core/error.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "trainer/trainer.hpp"

namespace dt {

int cmd_train(int argc, char** argv) {
  std::string config_path, resume;
  std::vector<std::string> overrides;
  bool force = false;
  CommandLine cl("train", "usage: difftron train CONFIG.yaml [--set section.key=value ...]\n",
                 "Trains the model described by CONFIG.yaml (sections model, train, data,\n"
                 "parallel, checkpoint, runtime; see configs/tiny.yaml). Prints a progress line\n"
                 "per step on stdout and appends the same as JSON lines to\n"
                 "<train.run_dir>/metrics.jsonl; errors and warnings go to stderr.\n");
  cl.positional("CONFIG.yaml", config_path, "the run's config");
  cl.texts("--set", overrides, "KEY=VALUE", "override a config value, e.g. --set train.max_steps=50");
  cl.text("--resume", resume, "auto|DIR",
          "continue from a checkpoint: auto = the newest complete one in\n"
          "checkpoint.dir whose checksums verify (a fresh start if there is\n"
          "none; an error if there are only damaged ones), or a step_<N>\n"
          "directory. The seed, batch shape, data mix and model must match\n"
          "the checkpoint's; use checkpoint.init_from to start a new stage");
  cl.flag("--force", force,
          "start fresh even if train.run_dir or checkpoint.dir holds another\n"
          "run: removes its metrics.jsonl, config.yaml and checkpoints");
  cl.footer("A fresh run refuses a run directory or checkpoint directory that holds another\n"
            "run. The last step is always saved (with checkpoint.dir set). SIGTERM, SIGUSR1\n"
            "and ctrl-C finish the step, save and exit; a second ctrl-C exits at once. A\n"
            "rank whose step makes no progress for runtime.step_timeout_s ends the job\n"
            "(exit code 75) so that a restart with --resume auto continues.\n");
  if (!cl.parse(argc, argv)) return 0;
  if (config_path.empty()) throw UsageError("missing CONFIG.yaml (usage: difftron train CONFIG.yaml [--set key=value ...])");
  Config cfg = load_config_file(config_path, overrides);
  Trainer trainer(cfg);
  trainer.set_force(force);
  if (!resume.empty()) trainer.resume(resume);
  trainer.run();
  return 0;
}

}  // namespace dt
