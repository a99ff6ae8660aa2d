// The training loop on one process: micro-batches with gradient accumulation,
// global-norm clipping, the LR schedule and AdamW, with a progress line per step.
#pragma once
#include <memory>
#include <vector>

#include "data/token_loader.hpp"
#include "model/config.hpp"
#include "model/transformer.hpp"
#include "trainer/adamw_optimizer.hpp"
#include "trainer/progress.hpp"

namespace dt {

class Trainer {
 public:
  explicit Trainer(const Config& cfg);
  // Runs to the configured number of steps; returns the last step's stats.
  StepStats run();
  // One optimizer step (0-based index); exposed for tests.
  StepStats train_step(int64_t step);
  Transformer& model() { return *model_; }
  const TokenLoader& data() const { return *loader_; }

 private:
  Config cfg_;
  int threads_ = 1;
  double peak_gflops_ = 0;
  std::unique_ptr<TokenLoader> loader_;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<AdamWOptimizer> opt_;
  std::vector<int32_t> window_, inputs_, targets_;
};

}  // namespace dt
