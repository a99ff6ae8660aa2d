#include "trainer/trainer.hpp"

#include <cblas.h>
#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/log.hpp"
#include "kernels/peak.hpp"
#include "trainer/lr_schedule.hpp"

namespace dt {

Trainer::Trainer(const Config& cfg) : cfg_(cfg) {
  if (cfg_.runtime.device != "cpu")
    fail(cfg_.source, ": runtime.device: '", cfg_.runtime.device,
         "' is not available yet (the CUDA backend comes with a later release); expected cpu");
  if (cfg_.parallel.tp * cfg_.parallel.pp * cfg_.parallel.cp != 1)
    fail(cfg_.source, ": parallel: tp/pp/cp > 1 need the distributed trainer (not in this build); expected 1");
  validate_layout(cfg_, 1);
  threads_ = cfg_.runtime.threads > 0 ? cfg_.runtime.threads : omp_get_num_procs();
  omp_set_num_threads(threads_);
  openblas_set_num_threads(threads_);
  // Flush denormals to zero on every worker thread: late in training, tiny
  // gradients and Adam moments would otherwise fall into x86's slow path.
#if defined(__SSE__)
#pragma omp parallel
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ
#endif

  if (cfg_.data.datasets.empty())
    fail(cfg_.source, ": data.datasets: empty; expected at least one {path, weight} of prepared shards");
  std::vector<std::string> paths;
  for (const DatasetSpec& d : cfg_.data.datasets) paths.push_back(d.path);
  if (paths.size() > 1)
    log_info("note: ", paths.size(), " datasets are read as one stream; weighted blending comes with the data pipeline");
  loader_ = std::make_unique<TokenLoader>(paths, cfg_.train.seq_len, cfg_.train.seed);
  if (loader_->vocab_size() > cfg_.model.vocab_size)
    fail(cfg_.source, ": model.vocab_size: ", cfg_.model.vocab_size, " is smaller than the data's vocabulary (",
         loader_->vocab_size(), ", tokenizer ", loader_->tokenizer(), "); expected at least ", loader_->vocab_size());

  const int B = int(cfg_.parallel.micro_batch), T = cfg_.train.seq_len;
  model_ = std::make_unique<Transformer>(cfg_.model, B, T);
  model_->init_weights(cfg_.train.seed);
  opt_ = std::make_unique<AdamWOptimizer>(*model_, cfg_.train);
  window_.resize(T + 1);
  inputs_.resize(size_t(B) * T);
  targets_.resize(size_t(B) * T);

  peak_gflops_ = measure_sgemm_gflops_one_thread(1024, 2) * threads_;
  int64_t nparams = 0;
  for (const ParamSpec& p : model_->registry()) nparams += p.numel();
  log_info("model: ", cfg_.model.attention == AttentionKind::Diff ? "DIFF Transformer" : "Transformer", ", ",
           nparams, " parameters, ", cfg_.model.n_layers, " layers, d_model ", cfg_.model.d_model, ", ",
           train_flops_per_token(cfg_.model, T) / 1e6, " MFLOP/token");
  log_info("runtime: cpu, ", threads_, " threads, fp32 peak ", peak_gflops_, " GFLOP/s (1-thread SGEMM × threads), ",
           cfg_.grad_accum_steps(1), " micro-batches of ", B, " per step, activations ",
           model_->activation_bytes() / 1e6, " MB");
}

StepStats Trainer::train_step(int64_t step) {
  const auto t0 = std::chrono::steady_clock::now();
  const int B = model_->micro_batch(), T = model_->seq_len();
  const int64_t accum = cfg_.grad_accum_steps(1);
  const int64_t tokens_per_step = accum * B * T;
  model_->zero_grads();
  double loss_sum = 0;
  for (int64_t a = 0; a < accum; ++a) {
    for (int b = 0; b < B; ++b) {
      loader_->sample(step * cfg_.train.batch_size + a * B + b, window_.data());
      std::copy(window_.begin(), window_.end() - 1, inputs_.begin() + size_t(b) * T);
      std::copy(window_.begin() + 1, window_.end(), targets_.begin() + size_t(b) * T);
    }
    // The loss is the mean over every target of the step, so each micro-batch's
    // gradient is scaled by 1/(tokens per step).
    loss_sum += model_->forward_backward(inputs_.data(), targets_.data(), 1.f / float(tokens_per_step));
  }
  Arena& g = model_->grad_arena();
  const double gnorm = std::sqrt(ops::sum_squares(Tensor(g.base(), DType::F32, {int64_t(g.capacity() / 4)})));
  const double clip = cfg_.train.grad_clip;
  const float grad_scale = (clip > 0 && gnorm > clip) ? float(clip / gnorm) : 1.f;
  const int64_t total = cfg_.total_steps();
  const double lr = lr_at(cfg_.train, step, total);
  opt_->step(step + 1, lr, grad_scale);

  StepStats s;
  s.step = step + 1;
  s.total_steps = total;
  s.loss = loss_sum / double(tokens_per_step);
  s.lr = lr;
  s.grad_norm = gnorm;
  if (cfg_.model.attention == AttentionKind::Diff && cfg_.model.n_layers > 0) {
    double lam = 0;
    for (int l = 0; l < cfg_.model.n_layers; ++l) lam += model_->lambda(l);
    s.mean_lambda = lam / cfg_.model.n_layers;
    s.has_lambda = true;
  }
  s.step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.tokens_per_s = double(tokens_per_step) / s.step_s;
  s.mfu = s.tokens_per_s * train_flops_per_token(cfg_.model, T) / (peak_gflops_ * 1e9);
  s.tokens_seen = (step + 1) * tokens_per_step;
  return s;
}

StepStats Trainer::run() {
  ProgressLog progress(cfg_.train.run_dir);
  {
    std::ofstream out(cfg_.train.run_dir + "/config.yaml");
    out << config_to_yaml(cfg_);
  }
  const int64_t total = cfg_.total_steps();
  log_info("training ", total, " steps of ", cfg_.train.batch_size * cfg_.train.seq_len, " tokens; metrics in ",
           cfg_.train.run_dir, "/metrics.jsonl");
  StepStats s;
  double elapsed = 0;
  for (int64_t step = 0; step < total; ++step) {
    s = train_step(step);
    elapsed += s.step_s;
    s.eta_s = elapsed / double(step + 1) * double(total - step - 1);
    if (!std::isfinite(s.loss)) fail("loss became ", s.loss, " at step ", s.step, "; lower train.lr or check the data");
    if (s.step % cfg_.train.log_every == 0 || s.step == total) progress.write(s);
  }
  log_info("done: ", total, " steps, final loss ", s.loss, ", ", format_duration(elapsed));
  return s;
}

}  // namespace dt
