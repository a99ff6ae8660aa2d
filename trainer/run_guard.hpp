// What a run may and may not do to what is already on disk: a fresh run never
// writes over another run, and a resumed run continues the same run.
#pragma once
#include <string>
#include <vector>

#include "core/config.hpp"

namespace dt {

// "" when cfg's run directory and checkpoint directory hold no run; else one
// line naming what they hold (metrics.jsonl, config.yaml, step_<N>, latest).
std::string previous_run(const Config& cfg);
// Removes that run's files (--force): metrics.jsonl and config.yaml of the run
// directory, and step_<N>* and latest of the checkpoint directory; returns
// what it removed, for the log.
std::string clear_previous_run(const Config& cfg);

// Creates dir if needed and checks it is writable; fails with one line naming
// the config key otherwise (before any step is trained, not at the first save).
void require_writable_dir(const char* key, const std::string& dir);

// Resuming a checkpoint saved under `stored` with the config `now`. Returns ""
// when allowed, else one line naming the first key that may not change (the
// seed, the batch shape, the data mix, the model): resuming would not continue
// the same run. Changes that are allowed but alter the run (LR schedule,
// optimizer settings, step budget, dataset paths) are appended to `notes`; the
// layout, runtime, checkpoint and logging settings may change freely.
std::string resume_mismatch(const Config& stored, const Config& now, std::vector<std::string>& notes);

}  // namespace dt
