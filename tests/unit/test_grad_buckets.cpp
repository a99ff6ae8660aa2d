// The buckets of the overlapped gradient reduction (trainer/data_parallel):
// together they must cover the flat gradient arena exactly once, in the
// order the backward finishes it (from the end towards the embedding), cut
// only where a layer's parameters begin. That the reduced values are right
// is tested under mpirun (tests/mpi, every dp > 1 layout, one bucket per layer).
#include <gtest/gtest.h>

#include <set>

#include "model/transformer.hpp"
#include "trainer/data_parallel.hpp"

namespace dt {
namespace {

ModelConfig four_layers() {
  return {.vocab_size = 40, .d_model = 32, .n_layers = 4, .n_heads = 2, .n_kv_heads = 2, .ffn_hidden = 48};
}

void expect_partition(const DataParallelGrads& dp, Transformer& model) {
  const auto& b = dp.buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front().second, model.flat_grads().numel()) << "the first bucket ends at the arena's end";
  EXPECT_EQ(b.back().first, 0) << "the last bucket starts at the arena's start";
  std::set<int64_t> layer_starts;
  for (int l = model.first_layer(); l < model.last_layer(); ++l) layer_starts.insert(model.layer_param_offset(l));
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_LT(b[i].first, b[i].second) << "bucket " << i << " is empty";
    if (i + 1 < b.size()) {
      EXPECT_EQ(b[i + 1].second, b[i].first) << "buckets " << i << " and " << i + 1 << " are not adjacent";
      EXPECT_TRUE(layer_starts.count(b[i].first)) << "bucket " << i << " starts inside a layer";
    }
  }
}

TEST(GradBuckets, ZeroSizeGivesOneBucketPerLayerAfterTheFirst) {
  Transformer model(four_layers(), 1, 8);
  DataParallelGrads dp(model, nullptr, false, 0.0);
  expect_partition(dp, model);
  // Layers 3, 2, 1 each start a bucket; layer 0 shares the last one with the embedding.
  EXPECT_EQ(dp.buckets().size(), 4u);
  EXPECT_EQ(dp.buckets()[0].first, model.layer_param_offset(3));
  EXPECT_EQ(dp.buckets()[2].first, model.layer_param_offset(1));
}

TEST(GradBuckets, LargeSizeGivesOneBucket) {
  Transformer model(four_layers(), 1, 8);
  DataParallelGrads dp(model, nullptr, false, 1000.0);
  expect_partition(dp, model);
  EXPECT_EQ(dp.buckets().size(), 1u);
}

TEST(GradBuckets, MidSizeGroupsWholeLayers) {
  Transformer model(four_layers(), 1, 8);
  // Two layers' worth of floats per bucket.
  const int64_t layer = model.layer_param_offset(2) - model.layer_param_offset(1);
  DataParallelGrads dp(model, nullptr, false, double(2 * layer) * sizeof(float) / 1e6);
  expect_partition(dp, model);
  EXPECT_GE(dp.buckets().size(), 2u);
  EXPECT_LE(dp.buckets().size(), 3u);
}

}  // namespace
}  // namespace dt
