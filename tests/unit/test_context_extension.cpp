// The context-extension stage: a model pretrained at T = 256 continues at
// T = 8192 with another RoPE θ from its checkpoint's weights (checkpoint.init_from),
// with a fresh optimizer, schedule and data stream. Its λ values at the start
// of the stage are those stored in the checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/test_util.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

std::string yaml(const std::string& dir, int seq_len, double theta, int steps, const std::string& extra) {
  std::ostringstream os;
  os << "model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 64, "
     << "rope_theta: " << theta << ", recompute: attention}\n"
     << "train: {seq_len: " << seq_len << ", global_batch_size: 2, max_steps: " << steps
     << ", lr: 3.0e-3, warmup_steps: 1, log_every: 1000, run_dir: " << dir << "/run" << seq_len << "}\n"
     << "data: {datasets: [{path: " << dir << "/shards, weight: 1.0}], long_doc_tokens: 8192, long_doc_factor: 2}\n"
     << "parallel: {micro_batch_size: 1}\n"
     << "checkpoint: {dir: " << dir << "/ck" << seq_len << ", every_steps: " << steps << extra << "}\n";
  return os.str();
}

TEST(ContextExtension, ContinuesAt8192FromThe256CheckpointWithItsLambda) {
  const dt_test::ScratchDir scratch;  // its own: other checkouts run this test at the same time
  const std::string& dir = scratch.path;
  dt_test::write_licence_shard(dir + "/shards");
  std::vector<float> lambdas;
  {
    Trainer pre(load_config_text(yaml(dir, 256, 10000.0, 20, "")));
    pre.run();
    for (int l = 0; l < 2; ++l) lambdas.push_back(pre.model().lambda(l));
  }
  Trainer ext(load_config_text(yaml(dir, 8192, 640000.0, 2, ", init_from: " + dir + "/ck256/step_00000020")));
  EXPECT_EQ(ext.steps_done(), 0);  // a new stage, not a resume
  EXPECT_EQ(ext.model().seq_len(), 8192);
  for (int l = 0; l < 2; ++l) EXPECT_EQ(ext.model().lambda(l), lambdas[l]) << "layer " << l;
  const StepStats s = ext.run();
  EXPECT_TRUE(std::isfinite(s.loss));
  EXPECT_LT(s.loss, std::log(320.0));  // it starts from a trained model, far below chance
  EXPECT_TRUE(fs::exists(dir + "/ck8192/step_00000002/manifest.yaml"));
}

}  // namespace
}  // namespace dt
