// A trained model loaded from a checkpoint for evaluation (perplexity, NLL by
// position, generation, needle retrieval): the whole model on this process.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "model/transformer.hpp"

namespace dt {

struct EvalModel {
  std::string dir;  // the step_<N> directory the weights came from
  int64_t step = 0;
  Config config;    // the run's config; model.rope_theta as overridden
  std::unique_ptr<Transformer> model;
};

// ckpt: a step_<N> directory, or a checkpoint root (its newest complete
// checkpoint). Builds a single-process Transformer (default ModelParallel)
// for `batch` sequences of `seq_len` tokens per forward (<= 0: the run's
// parallel.micro_batch_size / train.seq_len) and copies every parameter bit for
// bit from the checkpoint. rope_theta replaces the config's RoPE base (e.g.
// to evaluate beyond the trained context). Every file's checksum is verified;
// problems are one-line dt::Errors naming the path, tensor or value.
EvalModel load_model_for_eval(const std::string& ckpt, int batch = 0, int seq_len = 0,
                              std::optional<double> rope_theta = std::nullopt);

}  // namespace dt
