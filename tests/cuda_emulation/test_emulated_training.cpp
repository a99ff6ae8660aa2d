// Properties of the CUDA training step that only the emulator can observe
// without a GPU: how often the host waits for the device, and that the
// gradients do not depend on the order in which thread blocks run (the
// emulator draws a new block order per launch for each seed; float atomics
// would make the bits depend on it).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emulated_runtime.hpp"
#include "kernels/ops.hpp"
#include "core/config.hpp"
#include "model/transformer.hpp"
#include "tests/unit/test_util.hpp"
#include "trainer/adamw_optimizer.hpp"
#include "trainer/data_parallel.hpp"
#include "trainer/trainer.hpp"

namespace {

using namespace dt;
using namespace dt_test;

std::string trainer_yaml(const std::string& dir, int log_every) {
  return "model: {vocab_size: 320, d_model: 256, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 256}\n"
         "train: {seq_len: 64, global_batch_size: 4, max_steps: 4, lr: 3.0e-3, warmup_steps: 1, grad_clip: 1.0, "
         "log_every: " + std::to_string(log_every) + ", run_dir: " + dir + "/run}\n"
         "data: {datasets: [{path: " + dir + "/shards, weight: 1.0}]}\n"
         "parallel: {micro_batch_size: 2}\n"
         "runtime: {device: cuda, threads: 1}\n";
}

// The bound: at most two host waits per step (one for the step's
// statistics; λ joins them on logging steps). Steps 2 and 3 here are not
// logging steps (log_every 3 makes step 3 one).
TEST(EmulatedCudaTrainer, AStepWaitsForTheDeviceAtMostTwice) {
  ScratchDir dir;
  write_licence_shard(dir.path + "/shards");
  setenv("DIFFTRON_PEAK_TFLOPS", "1", 0);
  Trainer t(load_config_text(trainer_yaml(dir.path, 3)));
  t.train_step(0);  // the first step may grow scratch buffers (cudaFree waits)
  for (int step = 1; step < 3; ++step) {
    const uint64_t before = emu::host_sync_count();
    const StepStats s = t.train_step(step);
    const uint64_t waits = emu::host_sync_count() - before;
    EXPECT_LE(waits, 2u) << "step " << step + 1 << (s.has_lambda ? " (logging)" : "");
    EXPECT_GE(waits, 1u) << "the step ends by waiting for its statistics";
    EXPECT_EQ(s.has_lambda, step == 2) << "λ is read on logging steps only";
  }
}

// Two training steps of the same model from the same weights and tokens, under
// two emulated block orders: every gradient and parameter bit-identical (the
// gradients are compared too, since Adam's normalised update hides a last-bit
// difference of the gradient in the parameters). With
// DIFFTRON_EMU_MUTATION=atomic_backward (CTest emu.mutation.atomic_backward…)
// the backward accumulates with float atomics and this test must fail.
TEST(CudaTrainingDeterminism, StepsAreBitIdenticalWhateverTheBlockOrder) {
  const ModelConfig cfg{.vocab_size = 256, .d_model = 256, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1,
                        .ffn_hidden = 256, .attention = AttentionKind::Diff};
  const int B = 2, T = 96;  // T is no multiple of the attention tiles
  std::mt19937 rng(5);
  std::vector<int32_t> tokens(size_t(B * T)), targets(size_t(B * T));
  for (auto& t : tokens) t = int32_t(rng() % cfg.vocab_size);
  for (auto& t : targets) t = int32_t(rng() % cfg.vocab_size);
  auto run = [&](uint64_t seed) {
    emu::set_block_order_seed(seed);
    Transformer model(cfg, B, T, ModelParallel{}, 1, Device::cuda(0));
    model.init_weights(3);
    DataParallelGrads grads(model);
    AdamWOptimizer opt(model, TrainConfig{});
    std::vector<float> bits;
    for (int step = 1; step <= 2; ++step) {
      model.zero_grads();
      model.forward_backward(tokens.data(), targets.data(), 1.f / float(B * T));
      grads.finish_reduction();
      const std::vector<float> g = to_host(model.flat_grads());
      bits.insert(bits.end(), g.begin(), g.end());
      opt.clip_gradients(1.0);
      opt.step(step, 1e-3, 1.f, opt.clip_factor());
      model.sync_compute_weights();
    }
    const std::vector<float> p = to_host(model.flat_params());
    bits.insert(bits.end(), p.begin(), p.end());
    emu::set_block_order_seed(0);
    return bits;
  };
  const std::vector<float> a = run(11), b = run(12);
  ASSERT_EQ(a.size(), b.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  EXPECT_EQ(differ, 0u) << differ << " of " << a.size() << " gradients and parameters differ between two block orders";
}

}  // namespace
