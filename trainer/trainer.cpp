#include "trainer/trainer.hpp"

#include <cblas.h>
#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "comm/config_agreement.hpp"
#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "comm/node_ranks.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/watchdog.hpp"
#include "data/tokenizer.hpp"
#include "kernels/ops.hpp"
#include "kernels/gemm_peak.hpp"
#include "checkpoint/checkpoint.hpp"
#include "trainer/lr_schedule.hpp"
#include "trainer/machine_fit.hpp"
#include "trainer/run_guard.hpp"

namespace dt {

int default_threads(int configured) {
  if (configured > 0) return configured;
  return std::max(1, omp_get_num_procs() / node_local_size());
}

int use_cpu_threads(int configured) {
  const int threads = default_threads(configured);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  return threads;
}

Trainer::Trainer(const Config& cfg, MPI_Comm comm) : cfg_(cfg) {
  mpi_init_once(nullptr, nullptr);
  check_same_config(cfg_, comm);
  // runtime.device: cuda puts each rank on the GPU of its local rank.
  Device dev = Device::cpu();
  if (cfg_.runtime.device == "cuda") {
    if (!cuda_built())
      fail(cfg_.source, ": runtime.device: cuda, but this difftron was built without CUDA; "
           "expected a build with nvcc available (DIFFTRON_CUDA=ON) or runtime.device: cpu");
    const int visible = cuda_device_count();
    if (visible == 0)
      fail(cfg_.source, ": runtime.device: cuda, but no CUDA GPU is visible (check nvidia-smi and "
           "CUDA_VISIBLE_DEVICES); expected a GPU or runtime.device: cpu");
    dev = Device::cuda(local_device_index(visible));
  }
  int world = 1;
  MPI_Comm_size(comm, &world);
  validate_layout(cfg_, world);
  grid_ = std::make_unique<ProcessGrid>(cfg_.parallel.tp, cfg_.parallel.cp, cfg_.parallel.pp, comm,
                                        dev.is_cpu() ? -1 : dev.index);
  const GridCoord& at = grid_->coord();
  const GridShape& shape = grid_->shape();
  if (comm == MPI_COMM_WORLD) set_log_rank(grid_->rank(), world);
  check_run_fits_machine(cfg_, *grid_, dev);

  threads_ = use_cpu_threads(cfg_.runtime.threads);
  ops::set_deterministic(cfg_.runtime.deterministic);
  // Flush denormals to zero on every worker thread: late in training, tiny
  // gradients and Adam moments would otherwise fall into x86's slow path.
#if defined(__SSE__)
#pragma omp parallel
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ
#endif

  const int B = int(cfg_.parallel.micro_batch_size), T = cfg_.train.seq_len;
  const int64_t accum = cfg_.grad_accum_steps(shape.dp);
  if (grid_->first_stage() || grid_->last_stage()) {
    if (cfg_.data.datasets.empty())
      fail(cfg_.source, ": data.datasets: empty; expected at least one {path, weight} of prepared shards");
    LoaderOptions lo;
    lo.seq_len = T;
    lo.micro_batch = B;
    lo.dp_rank = at.dp;
    lo.dp_size = shape.dp;
    lo.seed = cfg_.train.seed;
    lo.model_vocab_size = cfg_.model.vocab_size;
    lo.tokenizer = tokenizer_name(cfg_.data.tokenizer);
    lo.long_doc_tokens = cfg_.data.long_doc_tokens;
    lo.long_doc_factor = cfg_.data.long_doc_factor;
    loader_ = std::make_unique<DataLoader>(cfg_.data.datasets, lo);
  }

  ModelParallel par;
  par.place = {at.tp, shape.tp, at.pp, shape.pp};
  par.tp_comm = &grid_->tp();
  par.cp_rank = at.cp;
  par.cp = shape.cp;
  par.cp_comm = &grid_->cp();
  par.pad_multiple = shape.dp * shape.cp;
  pipeline_ = std::make_unique<PipelineExecutor>(at.pp, shape.pp, int(accum));
  model_ = std::make_unique<Transformer>(cfg_.model, B, T / shape.cp, par, pipeline_->slots(), dev);
  model_->init_weights(cfg_.train.seed);
  grads_ = std::make_unique<DataParallelGrads>(*model_, grid_.get(), cfg_.parallel.zero == 1,
                                               cfg_.parallel.grad_bucket_mb);
  opt_ = std::make_unique<AdamWOptimizer>(*model_, cfg_.train, grid_.get(), grads_->shard());
  // A new stage (e.g. context extension) starts from another run's weights; --resume still wins.
  if (!cfg_.checkpoint.init_from.empty()) init_from(cfg_.checkpoint.init_from);
  window_.resize(size_t(B) * (T + 1));
  micro_tokens_ = size_t(B) * T / shape.cp;
  staging_ = PinnedBuffer(dev, 2 * micro_tokens_ * sizeof(int32_t) * size_t(accum));
  const int64_t layers = std::max(1, model_->last_layer() - model_->first_layer());
  stats_ = Arena(dev);
  stats_.begin_measure();
  stats_.alloc(DType::F64, {1});
  stats_.alloc_f32({layers});
  stats_.commit();
  loss_sum_ = stats_.alloc(DType::F64, {1});
  lambda_ = stats_.alloc_f32({layers});
  host_stats_ = PinnedBuffer(dev, 2 * sizeof(double) + size_t(layers) * sizeof(float));

  // CPU: one core's SGEMM rate, measured on rank 0 while the others wait, times
  // every core in use. CUDA: one GPU's peak (gpu_peak, kernels/gemm_peak.hpp: the datasheet
  // figure by device name, DIFFTRON_PEAK_TFLOPS, or the measured GEMM) times the GPUs.
  double one = 0.0;
  GpuPeak gpu;
  if (is_logger()) {
    if (dev.is_cpu()) one = measure_sgemm_gflops_one_thread(1024, 2) * threads_;
    else gpu = gpu_peak(dev.index), one = gpu.tflops * 1e3;
  }
  peak_gflops_ = grid_->world().all_reduce_sum(one) * world;
  if (is_logger()) {
    int64_t nparams = 0;
    for (const ParamSpec& p : param_registry(cfg_.model)) nparams += p.numel();
    log_info("model: ", model_kind_name(cfg_.model.attention), ", ",
             nparams, " parameters, ", cfg_.model.n_layers, " layers, d_model ", cfg_.model.d_model, ", ",
             train_flops_per_token(cfg_.model, T) / 1e6, " MFLOP/token");
    log_info("layout: tp ", shape.tp, " × pp ", shape.pp, " × dp ", shape.dp, cfg_.parallel.zero ? " (ZeRO-1)" : "",
             ", ", threads_, " threads per rank, ", accum, " micro-batches of ", B, " per rank per step");
    if (dev.is_cpu())
      log_info("runtime: cpu, fp32 peak ", peak_gflops_, " GFLOP/s (1-thread SGEMM × threads × ranks), activations ",
               model_->activation_bytes() / 1e6, " MB per rank");
    else
      log_info("runtime: ", dev.str(), " (local rank's GPU), bf16 activations, fp32 master weights; peak ",
               peak_gflops_ / 1e3, " TFLOP/s (", world, " × ", gpu.describe(), "), activations ",
               model_->activation_bytes() / 1e6, " MB per rank");
  }
}

// The next micro-batch of this rank, split into inputs and targets. Under
// context parallelism the rank keeps its two chunks of each sequence.
void Trainer::load_micro_batch(int micro) {
  const int B = model_->micro_batch(), T = cfg_.train.seq_len, Tl = model_->seq_len();
  const int cp = grid_->shape().cp, r = grid_->coord().cp, C = Tl / 2;
  loader_->next(window_.data());
  host_access(staged_inputs(micro), 2 * micro_tokens_ * sizeof(int32_t), true);
  for (int b = 0; b < B; ++b) {
    const int32_t* w = window_.data() + size_t(b) * (T + 1);
    int32_t* in = staged_inputs(micro) + size_t(b) * Tl;
    int32_t* tg = staged_targets(micro) + size_t(b) * Tl;
    if (cp == 1) {
      std::copy(w, w + T, in);
      std::copy(w + 1, w + T + 1, tg);
      continue;
    }
    for (int half = 0; half < 2; ++half) {
      const int start = cp_chunk(r, cp, half) * C;
      std::copy(w + start, w + start + C, in + half * C);
      std::copy(w + start + 1, w + start + C + 1, tg + half * C);
    }
  }
}

// Fault injection for testing job teardown: DIFFTRON_INJECT_FAILURE=RANK:STEP
// makes that world rank fail at the start of that (1-based) step.
static void maybe_inject_failure(int rank, int64_t step) {
  const char* spec = std::getenv("DIFFTRON_INJECT_FAILURE");
  int r = -1;
  long long s = -1;
  if (spec && std::sscanf(spec, "%d:%lld", &r, &s) == 2 && r == rank && s == step)
    fail("injected failure at step ", step, " (DIFFTRON_INJECT_FAILURE=", spec, ")");
}

// Host synchronisation: none inside the step (tokens come from pinned memory,
// the loss and the gradient norm are summed and the clipping factor computed
// on the device, λ is read only on logging steps); one wait at the end for the
// step's statistics, which also times the step.
StepStats Trainer::train_step(int64_t step) {
  const auto t0 = std::chrono::steady_clock::now();
  maybe_inject_failure(mpi_world_rank(), step + 1);
  const bool last = grid_->last_stage();
  const int64_t tokens_per_step = cfg_.train.global_batch_size * cfg_.train.seq_len;
  const int64_t total = cfg_.total_steps();
  const bool log_step = (step + 1) % cfg_.train.log_every == 0 || step + 1 == total;
  // The loss is the mean over every target of the global batch, so each
  // micro-batch's gradient is scaled by 1/(tokens per step).
  const float scale = 1.f / float(tokens_per_step);
  model_->zero_grads();
  ops::fill_zero(loss_sum_);
  PipelineExecutor::StepHooks hooks;
  hooks.load = [this](int micro) {
    load_micro_batch(micro);
    return PipelineExecutor::MicroBatch{staged_inputs(micro), staged_targets(micro)};
  };
  // The step's last backward overlaps the data-parallel gradient reduction.
  hooks.before_last_backward = [this] { grads_->overlap_next_backward(); };
  pipeline_->run_step(*model_, grid_->pp(), scale, loss_sum_, hooks);
  watch_phase("gradient reduction");
  grads_->finish_reduction();
  watch_phase("gradient clipping");
  opt_->clip_gradients(cfg_.train.grad_clip);
  const double lr = lr_at(cfg_.train, step, total);
  watch_phase("optimizer step");
  opt_->step(step + 1, lr, 1.f, opt_->clip_factor());
  watch_phase("parameter all-gather");
  grads_->all_gather_params();
  model_->sync_compute_weights();
  steps_done_ = step + 1;

  // λ of each layer is reported by one replica: tp, dp and cp rank 0 of each stage.
  const bool diff = cfg_.model.attention == AttentionKind::Diff && cfg_.model.n_layers > 0;
  const bool lambda_owner = grid_->coord().tp == 0 && grid_->coord().dp == 0 && grid_->coord().cp == 0;
  const int layers = model_->last_layer() - model_->first_layer();
  if (diff && log_step && lambda_owner)
    for (int l = 0; l < layers; ++l) model_->lambda_into(model_->first_layer() + l, lambda_.slice0(l, l + 1));
  // The step's one wait for the device.
  auto* host = host_stats_.as<double>();
  auto* host_lambda = reinterpret_cast<float*>(host + 2);
  const Device dev = model_->device();
  device_copy(host, Device::cpu(), loss_sum_.ptr, dev, sizeof(double));
  device_copy(host + 1, Device::cpu(), opt_->norm_sq().ptr, dev, sizeof(double));
  if (diff && log_step && lambda_owner) device_copy(host_lambda, Device::cpu(), lambda_.ptr, dev, layers * sizeof(float));
  watch_phase("waiting for the device at the end of the step");
  device_synchronize(dev);
  host_access(host, host_stats_.bytes(), false);
  watch_phase("step statistics");

  StepStats s;
  s.step = step + 1;
  s.total_steps = total;
  // Each tp rank of the last stage holds the same loss; count one per replica.
  const bool reporter = last && grid_->coord().tp == 0;
  s.loss = grid_->world().all_reduce_sum(reporter ? host[0] : 0.0) / double(tokens_per_step);
  s.lr = lr;
  s.grad_norm = std::sqrt(host[1]);
  if (diff && log_step) {
    double lam = 0;
    if (lambda_owner)
      for (int l = 0; l < layers; ++l) lam += host_lambda[l];
    s.mean_lambda = grid_->world().all_reduce_sum(lam) / cfg_.model.n_layers;
    s.has_lambda = true;
  }
  s.step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.step_s = grid_->world().all_reduce_max(s.step_s);
  s.tokens_per_s = double(tokens_per_step) / s.step_s;
  s.mfu = s.tokens_per_s * train_flops_per_token(cfg_.model, cfg_.train.seq_len) / (peak_gflops_ * 1e9);
  s.tokens_seen = (step + 1) * tokens_per_step;
  return s;
}

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
  // A second ctrl-C means "now": exit without saving (write and _exit are
  // async-signal-safe).
  if (sig == SIGINT && g_stop_signal != 0) {
    static const char msg[] = "\ndifftron train: second SIGINT: exiting without saving\n";
    if (::write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    }
    std::_Exit(128 + SIGINT);
  }
  g_stop_signal = sig;
  if (sig == SIGINT) {
    static const char msg[] =
        "\ndifftron train: SIGINT: finishing this step and saving a checkpoint; press ctrl-C again to exit "
        "without saving\n";
    if (::write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    }
  }
}

// Installs the stop handlers for the life of a run() and restores the old ones.
struct StopSignals {
  static constexpr int kSignals[] = {SIGTERM, SIGUSR1, SIGINT};
  struct sigaction old[3];
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old[i]);
  }
  ~StopSignals() {
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old[i], nullptr);
  }
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "a stop signal";
  }
}

}  // namespace

StepStats Trainer::run() {
  StepStats s;
  const int64_t total = cfg_.total_steps();
  if (!resumed_) check_fresh_run();
  if (steps_done_ > total)
    fail("the checkpoint is at step ", steps_done_, ", past the end of training at step ", total,
         " (train.max_steps / max_tokens); raise it to train further");
  if (steps_done_ == total) {
    if (is_logger())
      log_info("nothing to train: the checkpoint is at step ", total, ", the end of training (raise train.max_steps "
               "or max_tokens to train further)");
    return s;
  }
  std::unique_ptr<ProgressLog> progress;
  if (is_logger()) {
    require_writable_dir("train.run_dir", cfg_.train.run_dir);
    if (!cfg_.checkpoint.dir.empty()) require_writable_dir("checkpoint.dir", cfg_.checkpoint.dir);
    progress = std::make_unique<ProgressLog>(cfg_.train.run_dir, steps_done_);
    write_file_atomically(cfg_.train.run_dir + "/config.yaml", config_to_yaml(cfg_));
    log_info("training steps ", steps_done_ + 1, "..", total, " of ", cfg_.train.global_batch_size * cfg_.train.seq_len,
             " tokens; metrics in ", cfg_.train.run_dir, "/metrics.jsonl");
  }
  // Slurm sends SIGTERM (or the --signal of the batch script, often SIGUSR1)
  // before preemption, and a user ctrl-C: finish the step, save, exit cleanly.
  const StopSignals signals;
  Watchdog::Options wo;
  wo.fixed_s = cfg_.runtime.step_timeout_s;
  Watchdog watchdog(wo, grid_->rank());
  double elapsed = 0;
  const int64_t first = steps_done_;
  const bool saving = !cfg_.checkpoint.dir.empty();
  const int64_t every = saving ? cfg_.checkpoint.every_steps : 0;
  while (steps_done_ < total) {
    watchdog.start_step(steps_done_);
    s = train_step(steps_done_);
    watchdog.finish_step(s.step_s);
    elapsed += s.step_s;
    s.eta_s = elapsed / double(steps_done_ - first) * double(total - steps_done_);
    if (!std::isfinite(s.loss)) fail("loss became ", s.loss, " at step ", s.step, "; lower train.lr or check the data");
    if (progress && (s.step % cfg_.train.log_every == 0 || s.step == total)) progress->write(s);
    watch_phase("stop-signal check");
    const int stop = int(grid_->world().all_reduce_max(double(g_stop_signal)));
    // The last step is always saved, however it relates to every_steps.
    if (saving && ((every > 0 && steps_done_ % every == 0) || stop || steps_done_ == total)) {
      watchdog.start_save();
      const auto t0 = std::chrono::steady_clock::now();
      const bool saved = save_checkpoint();
      watchdog.finish_save(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      // With checkpoint.retry_failed_save a failed save is tried again at the
      // next one; the last one has no next, so its failure ends the run.
      if (!saved && (stop || steps_done_ == total))
        fail("checkpoint: the save of the final step ", steps_done_, " failed; ",
             saved_step_ >= 0 ? "the newest checkpoint is " + checkpoint_dir_name(saved_step_)
                              : std::string("this run has no checkpoint"));
    }
    if (stop) {
      if (is_logger())
        log_info("stopping after step ", steps_done_, " on ", signal_name(stop),
                 saving ? "; resume with --resume auto" : " (no checkpoint.dir: nothing saved)");
      break;
    }
  }
  if (is_logger()) log_info("done: ", steps_done_, " steps, final loss ", s.loss, ", ", format_duration(elapsed));
  return s;
}

}  // namespace dt
