// A short real training run: the byte-level model on English text must get well
// below the unigram entropy of its data, i.e. it has learned to use context.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

// The Debian licence texts: real English prose, present on every Debian
// machine. Returns the directory; `entropy` gets the unigram entropy (nats)
// of the tokens written, the loss of a model that ignores context.
std::string prepare_licence_shard(double& entropy) {
  const fs::path dir = fs::temp_directory_path() / "difftron_test_training";
  fs::remove_all(dir);
  fs::create_directories(dir / "shards");
  auto tok = make_tokenizer("byte");
  ShardWriter w((dir / "shards" / "shard_00000.h5").string(), tok->name(), tok->vocab_size(), tok->eos_id());
  int docs = 0;
  std::vector<double> counts(tok->vocab_size(), 0.0);
  double total = 0;
  for (const auto& e : fs::directory_iterator("/usr/share/common-licenses")) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<int32_t> ids = tok->encode(ss.str());
    w.add_document(ids);
    for (int32_t id : ids) counts[id] += 1;
    counts[tok->eos_id()] += 1;
    total += double(ids.size() + 1);
    ++docs;
  }
  w.close();
  entropy = 0;
  for (double c : counts)
    if (c > 0) entropy -= c / total * std::log(c / total);
  EXPECT_GT(docs, 5);
  return dir.string();
}

TEST(Training, TinyModelLearnsBelowUnigramEntropy) {
  double entropy = 0;
  const std::string dir = prepare_licence_shard(entropy);
  const std::string yaml = R"(
model: {vocab_size: 320, d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 176}
train: {seq_len: 64, batch_size: 16, max_steps: 150, lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 10,
        log_every: 50, run_dir: )" + dir + R"(/run}
data: {datasets: [{path: )" + dir + R"(/shards, weight: 1.0}]}
parallel: {micro_batch: 8}
)";
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

}  // namespace
}  // namespace dt
