// Whether a training run fits this machine, decided before anything is
// allocated: runtime.threads within the cores this process may use (more would
// oversubscribe them and inflate the MFU peak), and the memory this rank needs
// within what the machine has available (a config too big otherwise allocates
// until the OOM killer ends it).
#pragma once
#include "comm/process_grid.hpp"
#include "core/config.hpp"
#include "model/memory_estimate.hpp"

namespace dt {

// One rank's memory, as the Trainer allocates it.
struct RankBytes {
  TransformerBytes model;     // parameters, gradients, compute copies, activations
  CheckedSize optimizer;      // AdamW moments (and the ZeRO-1 gradient shard): 2 or 3 × params / shards
  CheckedSize token_buffers;  // host: the loader's prefetched micro-batches, the window, the step's pinned tokens
  CheckedSize device_total() const { return model.total() + optimizer; }
};

RankBytes estimate_rank_bytes(const Config& c, const GridShape& shape, const GridCoord& at, Device dev);

// Fails with one line naming runtime.threads and the core count, or the
// memory needed and available (CPU: every rank on this node shares it).
void check_run_fits_machine(const Config& c, const ProcessGrid& grid, Device dev);

}  // namespace dt
