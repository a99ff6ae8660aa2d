// Evaluation: the PNG writer's bytes, the NLL-by-position arithmetic, and a
// model loaded from a checkpoint computing exactly what the trained one did.
#include <gtest/gtest.h>

#include "tests/unit/test_util.hpp"
#include <stdlib.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "eval/eval_model.hpp"
#include "eval/perplexity.hpp"
#include "eval/report/png.hpp"
#include "trainer/trainer.hpp"

namespace dt {
namespace {

namespace fs = std::filesystem;

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

TEST(PngWriter, ValidSignatureChunksCrcsAndExactPixels) {
  // Odd sizes, so a row-stride or filter-byte mistake cannot hide.
  Image img(7, 5);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) img.set(x, y, {uint8_t(37 * x), uint8_t(51 * y), uint8_t(x * y + 1)});
  const std::vector<uint8_t> png = encode_png(img);

  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ASSERT_GE(png.size(), 8u);
  EXPECT_TRUE(std::equal(signature, signature + 8, png.begin()));

  // Walk the chunks: length, type, data, crc32 over type and data.
  std::vector<std::string> types;
  std::vector<uint8_t> ihdr, idat;
  for (size_t at = 8; at < png.size();) {
    ASSERT_LE(at + 12, png.size());
    const uint32_t len = be32(&png[at]);
    ASSERT_LE(at + 12 + len, png.size());
    const std::string type(png.begin() + at + 4, png.begin() + at + 8);
    const uLong crc = crc32(0L, &png[at + 4], uInt(4 + len));
    EXPECT_EQ(be32(&png[at + 8 + len]), uint32_t(crc)) << "chunk " << type;
    std::vector<uint8_t> data(png.begin() + at + 8, png.begin() + at + 8 + len);
    if (type == "IHDR") ihdr = data;
    if (type == "IDAT") idat.insert(idat.end(), data.begin(), data.end());
    types.push_back(type);
    at += 12 + len;
  }
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));

  ASSERT_EQ(ihdr.size(), 13u);
  EXPECT_EQ(be32(&ihdr[0]), 7u);   // width
  EXPECT_EQ(be32(&ihdr[4]), 5u);   // height
  EXPECT_EQ(ihdr[8], 8);           // bit depth
  EXPECT_EQ(ihdr[9], 2);           // colour type: RGB
  EXPECT_EQ(ihdr[10], 0);          // compression: deflate
  EXPECT_EQ(ihdr[11], 0);          // filter method
  EXPECT_EQ(ihdr[12], 0);          // no interlace

  // Inflated, IDAT is each row as a filter byte (0: none) and its RGB bytes.
  const size_t row = 1 + 3 * 7;
  std::vector<uint8_t> raw(row * 5 + 16);
  uLongf raw_len = uLongf(raw.size());
  ASSERT_EQ(uncompress(raw.data(), &raw_len, idat.data(), uLong(idat.size())), Z_OK);
  ASSERT_EQ(raw_len, row * 5);
  for (int y = 0; y < 5; ++y) {
    EXPECT_EQ(raw[y * row], 0) << "row " << y;
    for (int x = 0; x < 7; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(raw[y * row + 1 + 3 * x + c], img.rgb[(size_t(y) * 7 + x) * 3 + c]) << x << "," << y << "," << c;
  }
}

TEST(PositionNll, CumulativeAverageMatchesDirectComputation) {
  // Synthetic per-token losses of W windows × T positions, added in uneven batches.
  const int W = 9, T = 37;
  std::vector<float> loss(size_t(W) * T);
  for (size_t i = 0; i < loss.size(); ++i) loss[i] = float(2.0 + std::sin(0.37 * double(i)) + 0.01 * double(i % T));
  PositionNll acc(T);
  acc.add(loss.data(), 4);
  acc.add(loss.data() + 4 * T, 1);
  acc.add(loss.data() + 5 * T, 4);
  ASSERT_EQ(acc.windows(), W);

  // Direct: for each p, the mean over windows of that window's average NLL of its first p targets.
  const std::vector<double> cum = acc.cumulative(), at = acc.at_position();
  ASSERT_EQ(int(cum.size()), T);
  for (int p = 1; p <= T; ++p) {
    double mean_of_avgs = 0, mean_at = 0;
    for (int w = 0; w < W; ++w) {
      double s = 0;
      for (int t = 0; t < p; ++t) s += loss[size_t(w) * T + t];
      mean_of_avgs += s / p / W;
      mean_at += loss[size_t(w) * T + p - 1] / double(W);
    }
    // Same sums of the same floats in another order: agreement to double rounding.
    EXPECT_NEAR(cum[p - 1], mean_of_avgs, 1e-12) << "position " << p;
    EXPECT_NEAR(at[p - 1], mean_at, 1e-12) << "position " << p;
  }
}

TEST(PositionNll, LogSpacedPositionsCoverOneToT) {
  for (int T : {1, 2, 7, 64, 4096, 65536}) {
    const std::vector<int> ps = log_spaced_positions(T, 20);
    ASSERT_FALSE(ps.empty());
    EXPECT_EQ(ps.front(), 1);
    EXPECT_EQ(ps.back(), T);
    EXPECT_LE(ps.size(), 20u);
    for (size_t i = 1; i < ps.size(); ++i) EXPECT_LT(ps[i - 1], ps[i]) << "T " << T;
  }
}

// A fresh directory under the test temp dir, removed afterwards.
struct Scratch {
  std::string path;
  Scratch() {
    std::string tmpl = ::testing::TempDir() + "/dt_eval_XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~Scratch() { fs::remove_all(path); }
};

void write_licence_shard(const std::string& dir) { dt_test::write_licence_shard(dir + "/shards"); }

Config tiny_run_config(const std::string& dir) {
  return load_config_text(R"(
model: {vocab_size: 320, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 88}
train: {seq_len: 32, global_batch_size: 8, max_steps: 2, lr: 3.0e-3, log_every: 1, run_dir: )" + dir + R"(/run}
data: {datasets: [{path: )" + dir + R"(/shards, weight: 1.0}]}
parallel: {micro_batch_size: 4}
checkpoint: {dir: )" + dir + R"(/ckpt, every_steps: 2}
)");
}

TEST(EvalModel, LoadedModelComputesExactlyTheTrainedModelsLosses) {
  Scratch s;
  write_licence_shard(s.path);
  Trainer trainer(tiny_run_config(s.path));
  trainer.run();
  ASSERT_TRUE(fs::exists(s.path + "/ckpt/step_00000002/manifest.yaml"));

  // The checkpoint root resolves to its newest checkpoint; batch and length default to the run's.
  const EvalModel em = load_model_for_eval(s.path + "/ckpt");
  EXPECT_EQ(fs::path(em.dir).filename(), "step_00000002");
  EXPECT_EQ(em.step, 2);
  EXPECT_EQ(em.model->micro_batch(), 4);
  EXPECT_EQ(em.model->seq_len(), 32);

  const int N = 4 * 32;
  std::vector<int32_t> tokens(N), targets(N);
  for (int i = 0; i < N; ++i) tokens[i] = int32_t((i * 37 + 11) % 257), targets[i] = int32_t((i * 53 + 5) % 257);
  Transformer& trained = trainer.model();
  const double want = trained.forward(tokens.data(), targets.data());
  const std::vector<float> want_each(trained.losses().f32(), trained.losses().f32() + N);
  const double got = em.model->forward(tokens.data(), targets.data());
  // Weights copied bit for bit, same code, same threads: the same floats exactly.
  EXPECT_EQ(got, want);
  for (int i = 0; i < N; ++i) ASSERT_EQ(em.model->losses().f32()[i], want_each[i]) << "token " << i;

  // Other batch / length / RoPE base: a model of that shape, same weights.
  const EvalModel other = load_model_for_eval(s.path + "/ckpt/step_00000002", 2, 48, 500000.0);
  EXPECT_EQ(other.model->micro_batch(), 2);
  EXPECT_EQ(other.model->seq_len(), 48);
  EXPECT_EQ(other.config.model.rope_theta, 500000.0);
  EXPECT_EQ(other.model->params().size(), em.model->params().size());

  // Perplexity over a few windows, and its by-position table, agree with each other.
  EvalOptions opt;
  opt.data = {s.path + "/shards", s.path + "/shards"};
  opt.max_tokens = 10 * 32;
  opt.by_position = true;
  const EvalResult r = evaluate_perplexity(*em.model, em.config, opt);
  EXPECT_EQ(r.windows, 10);
  EXPECT_EQ(r.tokens, 10 * 32);
  ASSERT_EQ(r.datasets.size(), 2u);
  EXPECT_EQ(r.datasets[0].windows, 5);  // equal-sized paths share the budget equally
  EXPECT_EQ(r.datasets[1].windows, 5);
  EXPECT_EQ(r.datasets[0].nll_sum, r.datasets[1].nll_sum);  // same data, same seed: same windows
  // Every window has T targets, so the cumulative average at p = T is the mean NLL.
  EXPECT_NEAR(r.by_position.cumulative().back(), r.mean_nll(), 1e-9);
  // Two steps from a near-uniform init: close to ln(vocab) nats, far from 0 or a blow-up.
  EXPECT_GT(r.mean_nll(), 1.0);
  EXPECT_LT(r.mean_nll(), std::log(320.0) + 1.0);
  EXPECT_NEAR(r.perplexity(), std::exp(r.mean_nll()), 1e-9 * r.perplexity());
}

TEST(EvalModel, MissingCheckpointIsOneLineError) {
  Scratch s;
  try {
    load_model_for_eval(s.path + "/no_such_ckpt");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no_such_ckpt"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace dt
