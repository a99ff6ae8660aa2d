// The training loop: any tp × pp × dp layout (one process is the 1×1×1 case).
// Per step: the 1F1B schedule over the step's micro-batches (gradient
// accumulation; trainer/pipeline_executor), whose last backward overlaps the
// data-parallel gradient reduction (tp sum of replicated gradients, dp
// all-reduce or ZeRO-1 reduce-scatter; trainer/data_parallel), global-norm
// clipping, the LR schedule and AdamW on this rank's shard, the ZeRO-1
// all-gather of the updated parameters, and one progress line.
#pragma once
#include <mpi.h>

#include <memory>
#include <vector>

#include "comm/process_grid.hpp"
#include "data/data_loader.hpp"
#include "core/config.hpp"
#include "model/transformer.hpp"
#include "trainer/adamw_optimizer.hpp"
#include "trainer/data_parallel.hpp"
#include "trainer/pipeline_executor.hpp"
#include "trainer/progress.hpp"

namespace dt {

class Trainer {
 public:
  // comm: the ranks of this run (MPI_COMM_WORLD under mpirun; MPI_COMM_SELF
  // makes a single-process run inside a multi-rank job, as tests use).
  explicit Trainer(const Config& cfg, MPI_Comm comm = MPI_COMM_WORLD);
  // Continues from a checkpoint: "auto" takes the newest complete one in
  // checkpoint.dir whose files verify (a fresh start when there is none; an
  // error when there are only damaged ones), else a step directory. Refuses
  // a checkpoint whose seed, data or batch shape differ from the config's.
  void resume(const std::string& spec);
  // A fresh run refuses a run directory or checkpoint directory that holds
  // another run; force = true removes that run's checkpoints and metrics instead.
  void set_force(bool force) { force_ = force; }
  // Starts from a checkpoint's weights only (fresh optimizer, schedule and
  // data): a step directory, or hf:DIR for a Hugging Face DiffLlama / Llama
  // model directory (g_sub = 1; checkpoint/hf_import.hpp).
  void init_from(const std::string& dir);
  // Writes <checkpoint.dir>/step_<N> atomically; every rank calls it. A failed
  // save removes its temporary directory and keeps the previous checkpoint;
  // then it throws, or with checkpoint.retry_failed_save returns false.
  bool save_checkpoint();
  // Runs from the current step to the configured number of steps, saving every
  // checkpoint.every_steps and at the end, and on SIGTERM, SIGUSR1 or a first
  // SIGINT saving and stopping early (a second SIGINT exits at once); a
  // watchdog ends the job when a step makes no progress (runtime.step_timeout_s).
  // Returns the last step's stats.
  StepStats run();
  int64_t steps_done() const { return steps_done_; }
  DataLoader* loader() { return loader_.get(); }
  // One optimizer step (0-based index; afterwards steps_done() == step + 1);
  // exposed for tests and benchmarks.
  StepStats train_step(int64_t step);
  Transformer& model() { return *model_; }
  ProcessGrid& grid() { return *grid_; }
  AdamWOptimizer& optimizer() { return *opt_; }
  DataParallelGrads& data_parallel() { return *grads_; }
  bool is_logger() const { return grid_->rank() == 0; }

 private:
  // Micro-batch `micro` of this step into its pinned staging buffers.
  void load_micro_batch(int micro);
  int32_t* staged_inputs(int micro) const { return staging_.as<int32_t>() + size_t(2 * micro) * micro_tokens_; }
  int32_t* staged_targets(int micro) const { return staged_inputs(micro) + micro_tokens_; }
  // This rank's slices of the weights (and of the Adam moments) from ck; ""
  // when every rank loaded, else on every rank the same one-line error.
  std::string load_weights(const class CheckpointReader& ck, bool with_optimizer);
  void init_from_hf(const std::string& dir);
  // Refuses to start a fresh run over another one (unless force_).
  void check_fresh_run();

  Config cfg_;
  int threads_ = 1;
  double peak_gflops_ = 0;
  std::unique_ptr<ProcessGrid> grid_;
  std::unique_ptr<DataLoader> loader_;  // first and last pipeline stages
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<DataParallelGrads> grads_;
  std::unique_ptr<AdamWOptimizer> opt_;
  std::vector<int32_t> window_;
  // Each micro-batch of a step has its own pinned inputs and targets, so the
  // host never overwrites tokens a queued copy has yet to read (the step ends
  // with the host synchronised, which frees them all for the next step).
  size_t micro_tokens_ = 0;
  PinnedBuffer staging_;
  // The step's statistics on the device (loss sum; λ per local layer) and
  // their pinned host copy (loss sum, squared gradient norm, λ per layer),
  // read back once per step.
  Arena stats_;
  Tensor loss_sum_, lambda_;
  PinnedBuffer host_stats_;
  std::unique_ptr<PipelineExecutor> pipeline_;  // this stage's 1F1B schedule, the same every step
  int64_t steps_done_ = 0;
  int64_t saved_step_ = -1;  // the step of the newest checkpoint this run saved or resumed from
  bool resumed_ = false, force_ = false;
};

// Cores this process may use: runtime.threads, else the node's cores split
// evenly among the ranks the launcher placed on it (node_local_size(),
// comm/node_ranks.hpp).
int default_threads(int configured);
// Sets OpenMP's and OpenBLAS's thread counts to default_threads(configured)
// and returns it.
int use_cpu_threads(int configured);

}  // namespace dt
