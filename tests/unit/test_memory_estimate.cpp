// The memory estimate (model/memory_estimate.hpp) is the Transformer's own
// layout computed without allocating: byte for byte the arenas a built model
// holds, for every attention kind, recomputation mode and parallel placement;
// and a config far too big is estimated at once, or reported as overflowing.
#include <gtest/gtest.h>

#include <mpi.h>

#include <chrono>

#include "comm/mpi_communicator.hpp"
#include "model/memory_estimate.hpp"
#include "trainer/adamw_optimizer.hpp"

namespace dt {
namespace {

ModelConfig small(AttentionKind kind = AttentionKind::Diff) {
  return {.vocab_size = 48, .d_model = 32, .n_layers = 3, .n_heads = 2, .n_kv_heads = 2, .ffn_hidden = 40,
          .attention = kind};
}

// Communicators the constructor only stores (it communicates nowhere).
struct SelfComm {
  std::unique_ptr<MpiCommunicator> comm;
  SelfComm() {
    mpi_init_once(nullptr, nullptr);
    MPI_Comm dup;
    MPI_Comm_dup(MPI_COMM_SELF, &dup);
    comm = std::make_unique<MpiCommunicator>(dup);
  }
};

void expect_estimate_matches(const ModelConfig& c, int B, int T, ModelParallel par = {}, int slots = 1) {
  static SelfComm self;
  par.tp_comm = par.place.tp > 1 ? self.comm.get() : nullptr;
  par.cp_comm = par.cp > 1 ? self.comm.get() : nullptr;
  const TransformerBytes e = transformer_bytes(c, B, T, par, slots);
  Transformer m(c, B, T, par, slots);
  ASSERT_FALSE(e.total().overflowed());
  EXPECT_EQ(e.params.value(), int64_t(m.param_arena().capacity()));
  EXPECT_EQ(e.grads.value(), int64_t(m.grad_arena().capacity()));
  EXPECT_EQ(e.activations.value(), int64_t(m.activation_bytes()));
  EXPECT_EQ(e.compute_weights.value(), 0) << "the CPU computes on the f32 parameters";
}

TEST(MemoryEstimate, EqualsTheArenasOfABuiltModel) {
  expect_estimate_matches(small(), 2, 24);
  expect_estimate_matches(small(AttentionKind::Standard), 3, 17);
  expect_estimate_matches(small(AttentionKind::DiffV2), 3, 17);
  ModelConfig gqa = small();
  gqa.n_kv_heads = 1, gqa.tie_embeddings = true;
  expect_estimate_matches(gqa, 1, 33);
  for (Recompute rc : {Recompute::Attention, Recompute::Full}) {
    ModelConfig c = small();
    c.recompute = rc;
    expect_estimate_matches(c, 2, 24);
  }
}

TEST(MemoryEstimate, EqualsTheArenasOfEachParallelPart) {
  for (int stage = 0; stage < 2; ++stage) {  // pp: embedding on the first stage, head on the last
    ModelParallel par;
    par.place = {0, 1, stage, 2};
    expect_estimate_matches(small(), 2, 16, par, 2 - stage);
  }
  ModelParallel tp;  // a tensor-parallel shard, padded for ZeRO-1 over dp 3
  tp.place = {1, 2, 0, 1};
  tp.pad_multiple = 3;
  expect_estimate_matches(small(AttentionKind::Standard), 2, 16, tp);
  expect_estimate_matches(small(AttentionKind::DiffV2), 2, 16, tp);
  for (AttentionKind kind : {AttentionKind::Diff, AttentionKind::Standard, AttentionKind::DiffV2}) {
    ModelParallel cp;  // context parallelism: the ring buffers
    cp.cp = 2, cp.cp_rank = 1, cp.pad_multiple = 2;
    expect_estimate_matches(small(kind), 2, 16, cp);
  }
}

TEST(MemoryEstimate, OptimizerStateIsTwoMomentsOfTheParameterArena) {
  Transformer m(small(), 1, 8);
  AdamWOptimizer opt(m, TrainConfig{});
  const TransformerBytes e = transformer_bytes(small(), 1, 8);
  EXPECT_EQ(int64_t(opt.m().bytes() + opt.v().bytes()), 2 * e.params.value());
}

TEST(MemoryEstimate, ABillionLayersIsEstimatedWithoutAllocating) {
  ModelConfig c = small();
  c.n_layers = 1'000'000'000;
  const auto t0 = std::chrono::steady_clock::now();
  const TransformerBytes e = transformer_bytes(c, 2, 24);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  ASSERT_FALSE(e.total().overflowed());
  // Each layer holds at least its Wq, Wk, Wv, Wo and three FFN matrices.
  EXPECT_GT(e.params.value(), int64_t(4) * c.n_layers * (4 * 32 * 32 + 3 * 32 * 40));
}

TEST(MemoryEstimate, SizesBeyond64BitsAreReportedAsOverflow) {
  ModelConfig c = small();
  c.d_model = 1'000'000'000, c.n_heads = 2, c.n_kv_heads = 2;  // Wq alone: 4e18 bytes; two layers more
  EXPECT_TRUE(transformer_bytes(c, 1, 8).params.overflowed());
  EXPECT_TRUE(transformer_bytes(small(), int64_t(1) << 40, int64_t(1) << 40).activations.overflowed());
  try {
    require_memory("cfg.yaml: this run", transformer_bytes(c, 1, 8).total(), "parameters", Device::cpu(), 1,
                   "a smaller model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overflows 64-bit"), std::string::npos) << e.what();
  }
}

TEST(MemoryEstimate, MoreThanAvailableIsRefusedWithBothFigures) {
  const int64_t available = device_available_bytes(Device::cpu());
  if (available < 0) GTEST_SKIP() << "no /proc/meminfo here";
  try {
    require_memory("cfg.yaml: this run", CheckedSize(available) * 2, "parameters", Device::cpu(), 1, "less");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("needs " + format_bytes(2 * available)), std::string::npos) << msg;
    EXPECT_NE(msg.find("MemAvailable"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(require_memory("cfg.yaml", 1000, "parameters", Device::cpu(), 1, "less"));
}

}  // namespace
}  // namespace dt
