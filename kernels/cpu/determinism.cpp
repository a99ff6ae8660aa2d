// The process-wide determinism switch of kernels/ops.hpp. The CUDA backward ops
// read it on every call (kernels/cuda/flash_attention_backward.cu,
// diff_attention.cu, embedding.cu); the CPU ops reduce in a fixed order always.
#include <atomic>

#include "core/emulation_hooks.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

namespace {
// Atomic only so a data-loader or test thread reading it is not a data race;
// it is set once before training.
std::atomic<bool> g_deterministic{true};
}  // namespace

void set_deterministic(bool on) { g_deterministic.store(on, std::memory_order_relaxed); }
// (The emulation's mutation check "atomic_backward" forces the atomic variants.)
bool deterministic() { return g_deterministic.load(std::memory_order_relaxed) && !DT_MUTATION("atomic_backward"); }

}  // namespace dt::ops
