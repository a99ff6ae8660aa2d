// A short real training run: the byte-level model on English text must get well
// below the unigram entropy of its data, i.e. it has learned to use context.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/unit/test_util.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

void learns_below_unigram_entropy(const std::string& attention) {
  const dt_test::ScratchDir scratch;  // its own: other checkouts run this test at the same time
  const std::string& dir = scratch.path;
  const double entropy = dt_test::write_licence_shard(dir + "/shards");
  const std::string yaml = R"(
model: {vocab_size: 320, d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 176, attention: )" +
                           attention + R"(}
train: {seq_len: 64, global_batch_size: 16, max_steps: 150, lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 10,
        log_every: 50, run_dir: )" + dir + R"(/run}
data: {datasets: [{path: )" + dir + R"(/shards, weight: 1.0}]}
parallel: {micro_batch_size: 8}
runtime: {threads: 1}
)";
  // One thread: ctest -j2 runs another test beside this one, and two OpenMP
  // threads on a shared core made it 40 times slower than alone.
  Trainer trainer(load_config_text(yaml));
  const StepStats first = trainer.train_step(0);
  // Untrained, the loss is close to ln(vocab): the init predicts uniformly.
  EXPECT_NEAR(first.loss, std::log(320.0), 0.3);
  StepStats last = trainer.run();
  // The unigram entropy of English bytes is ~3.2 nats; a model that uses context
  // gets well under it. 0.5 nats below is far beyond run-to-run noise.
  EXPECT_LT(last.loss, entropy - 0.5) << "unigram entropy " << entropy;
  EXPECT_TRUE(fs::exists(dir + "/run/metrics.jsonl"));
}

TEST(Training, TinyModelLearnsBelowUnigramEntropy) { learns_below_unigram_entropy("diff"); }
TEST(Training, TinyDiffV2ModelLearnsBelowUnigramEntropy) { learns_below_unigram_entropy("diff_v2"); }

}  // namespace
}  // namespace dt
