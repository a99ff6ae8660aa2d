// What a Transformer (model/transformer.hpp) will allocate, from the shapes
// alone and before anything is allocated, so that a config too big for the
// machine is refused with one line instead of running into the OOM killer.
// One layer's sizes are multiplied by the layer count (n_layers: 1000000000
// costs nothing to estimate), in 64-bit arithmetic that reports overflow.
// The layout mirrors Transformer's build_params, build_compute_weights and
// build_acts; tests/unit/test_memory_estimate.cpp holds them equal.
#pragma once
#include <string>

#include "core/checked_size.hpp"
#include "model/transformer.hpp"

namespace dt {

struct TransformerBytes {
  CheckedSize params, grads;    // f32 arenas (grads: the same layout as params)
  CheckedSize compute_weights;  // bf16 copies of the matrices on CUDA; none on the CPU
  CheckedSize activations;      // the activation arena: act_slots micro-batches in flight, scratch
  CheckedSize total() const { return params + grads + compute_weights + activations; }
  std::string parts() const;  // "parameters 1.2 GB, gradients 1.2 GB, activations 3.4 GB"
};

// The arenas of Transformer(m, micro_batch, seq_len, par, act_slots, dev);
// par's communicators are not used.
TransformerBytes transformer_bytes(const ModelConfig& m, int64_t micro_batch, int64_t seq_len,
                                   const ModelParallel& par = {}, int act_slots = 1, Device dev = Device::cpu());

// "12.3 GB" (decimal units, as free(1) -h and nvidia-smi print them); "over 9.22 EB" once overflowed.
std::string format_bytes(int64_t bytes);
std::string format_bytes(CheckedSize bytes);

// Refuses, with one line, a job whose `need` bytes on each of `ranks`
// processes sharing dev's memory exceed device_available_bytes(dev), or whose
// size overflowed 64 bits: "<what> needs <need> (<parts>) but <the machine>
// has <available> available; expected <remedy>". Skipped where the available
// memory cannot be read.
void require_memory(const std::string& what, CheckedSize need, const std::string& parts, Device dev, int ranks,
                    const std::string& remedy);

}  // namespace dt
