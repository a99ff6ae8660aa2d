// "No allocation inside a step": after the first step has sized every arena and
// scratch buffer, a training step makes no heap allocation through operator new
// on the training thread.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "trainer/trainer.hpp"

namespace {
// Only the training thread counts: the loader's prefetch thread does I/O
// work off the step's critical path, in buffers it recycles or frees.
thread_local bool g_counting = false;
std::atomic<long> g_allocations{0};
}  // namespace

// Counts allocations only while a test asks; otherwise behaves as the default.
void* operator new(std::size_t n) {
  if (g_counting) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace dt {
namespace {

TEST(TrainingStep, MakesNoHeapAllocationAfterTheFirst) {
  const std::string dir = ::testing::TempDir() + "difftron_alloc_test";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  {
    ShardWriter w(dir + "/shard_00000.h5", "byte", 257, 256);
    std::vector<int32_t> doc(5000);
    for (size_t i = 0; i < doc.size(); ++i) doc[i] = int32_t((i * 7919) % 256);
    w.add_document(doc);
    w.close();
    write_dataset_manifest(dir);
  }
  for (const char* attention : {"diff", "standard"}) {
    const std::string yaml = std::string(R"(
model: {vocab_size: 260, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, ffn_hidden: 64, attention: )") +
                             attention + R"(}
train: {seq_len: 80, global_batch_size: 4, max_steps: 3, run_dir: )" + dir + R"(/run}
data: {datasets: [{path: )" + dir + R"(, weight: 1.0}]}
parallel: {micro_batch_size: 2}
)";
    Trainer trainer(load_config_text(yaml));
    trainer.train_step(0);
    g_allocations = 0;
    g_counting = true;
    trainer.train_step(1);
    g_counting = false;
    EXPECT_EQ(g_allocations.load(), 0) << attention << " attention";
  }
  // The counter itself works: one explicit allocation is seen.
  g_allocations = 0;
  g_counting = true;
  delete new std::vector<int>(3);
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 2);  // the vector object and its buffer
}

}  // namespace
}  // namespace dt
