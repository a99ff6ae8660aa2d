// The pipeline executor (trainer/pipeline_executor): its message tags, and on
// one stage (plain gradient accumulation) the same gradients and loss as a
// forward_backward per micro-batch. Multi-stage runs are tested under mpirun
// (tests/mpi/parallel_equivalence: every pp layout equals one process).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>

#include "comm/mpi_communicator.hpp"
#include "trainer/pipeline_executor.hpp"

namespace dt {
namespace {

// A receive matches by (peer, tag): each micro-batch's activation and
// gradient need tags of their own, or a stage could take micro-batch 1's
// activation for micro-batch 0's gradient.
TEST(PipelineTags, UniquePerMicroBatchAndDirection) {
  std::set<int> tags;
  for (int m = 0; m < 64; ++m) {
    EXPECT_TRUE(tags.insert(activation_tag(m)).second) << "activation tag of micro-batch " << m << " reused";
    EXPECT_TRUE(tags.insert(gradient_tag(m)).second) << "gradient tag of micro-batch " << m << " reused";
    EXPECT_GE(activation_tag(m), 0);  // MPI tags are non-negative
  }
}

TEST(PipelineExecutor, ScheduleAndSlotsAreTheOneFOneB) {
  const PipelineExecutor ex(1, 4, 6);
  EXPECT_EQ(to_string(ex.schedule()), to_string(one_f_one_b(1, 4, 6)));
  EXPECT_EQ(ex.slots(), pipeline_slots(1, 4, 6));
}

// One stage, three micro-batches: every micro-batch loaded once in order, the
// hook called once, right before the last backward, and the accumulated
// gradients and loss sum bit-identical to three forward_backward calls (the
// same operations in the same order on the same slot).
TEST(PipelineExecutor, OneStageAccumulatesLikeForwardBackwardPerMicroBatch) {
  mpi_init_once(nullptr, nullptr);
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_SELF, &dup);
  MpiCommunicator pp(dup);
  const ModelConfig c{.vocab_size = 40, .d_model = 32, .n_layers = 2, .n_heads = 2, .n_kv_heads = 2, .ffn_hidden = 48};
  const int B = 2, T = 8, M = 3;
  const float scale = 1.f / float(M * B * T);
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> tokens(M, std::vector<int32_t>(B * T)), targets = tokens;
  for (int m = 0; m < M; ++m)
    for (int i = 0; i < B * T; ++i) tokens[m][i] = int32_t(rng() % 40), targets[m][i] = int32_t(rng() % 40);

  const PipelineExecutor ex(0, 1, M);
  Transformer piped(c, B, T, {}, ex.slots());
  piped.init_weights(7);
  std::vector<int> loaded;
  int hook_after_loads = -1;
  PipelineExecutor::StepHooks hooks;
  hooks.load = [&](int m) {
    loaded.push_back(m);
    return PipelineExecutor::MicroBatch{tokens[m].data(), targets[m].data()};
  };
  hooks.before_last_backward = [&] {
    EXPECT_EQ(hook_after_loads, -1) << "hook called twice";
    hook_after_loads = int(loaded.size());
  };
  Arena stats;
  stats.begin_measure();
  stats.alloc(DType::F64, {1});
  stats.commit();
  Tensor loss_sum = stats.alloc(DType::F64, {1});
  piped.zero_grads();
  ex.run_step(piped, pp, scale, loss_sum, hooks);
  EXPECT_EQ(loaded, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(hook_after_loads, M) << "the hook belongs before the last backward, after the last forward";

  Transformer plain(c, B, T);
  plain.init_weights(7);
  plain.zero_grads();
  double loss = 0;
  for (int m = 0; m < M; ++m) loss += plain.forward_backward(tokens[m].data(), targets[m].data(), scale);
  EXPECT_EQ(*static_cast<double*>(loss_sum.ptr), loss);
  const Tensor a = piped.flat_grads(), b = plain.flat_grads();
  ASSERT_EQ(a.numel(), b.numel());
  EXPECT_EQ(std::memcmp(a.ptr, b.ptr, size_t(a.numel()) * sizeof(float)), 0) << "gradients differ";
}

}  // namespace
}  // namespace dt
