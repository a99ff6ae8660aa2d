#include "eval/generate/kv_cache.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "model/memory_estimate.hpp"

namespace dt {

using namespace ops;

KvCacheDecoder::KvCacheDecoder(const Transformer& model, int capacity, int max_chunk)
    : model_(model), cap_(capacity), chunk_(std::max(1, std::min(max_chunk, capacity))) {
  const ModelConfig& c = model.config();
  const ModelParallel& par = model.parallel();
  if (par.place.tp != 1 || par.place.pp != 1 || par.cp != 1)
    fail("KV-cache decoding needs the whole model on one process (tp = pp = cp = 1); got tp ", par.place.tp,
         ", pp ", par.place.pp, ", cp ", par.cp);
  if (!model.weights().embed.device.is_cpu())
    fail("KV-cache decoding runs on the CPU; the model's weights are on ", model.weights().embed.device.str());
  if (capacity < 1) fail("KV cache capacity ", capacity, ": expected at least one position");
  V_ = c.vocab_size;
  arena_ = Arena(Device::cpu());
  arena_.begin_measure();
  build(arena_);
  require_memory("KV cache of " + std::to_string(capacity) + " positions", int64_t(arena_.used()),
                 std::to_string(c.n_layers) + " layers of keys and values, and scratch", Device::cpu(), 1,
                 "fewer positions (a shorter prompt or fewer new tokens)");
  arena_.commit();
  build(arena_);
}

void KvCacheDecoder::build(Arena& a) {
  const ModelConfig& c = model_.config();
  cache_.alloc(a, c, cap_);
  buf_.alloc(a, c, chunk_);
  lnf_ = a.alloc_f32({1, c.d_model});
  rstdf_ = a.alloc_f32({1});
  logits_ = a.alloc_f32({1, V_});
}

std::span<const float> KvCacheDecoder::append(std::span<const int32_t> tokens) {
  if (tokens.empty()) fail("KV-cache decoder: nothing to append (expected at least one token)");
  if (int64_t(tokens.size()) > cap_ - len_)
    fail("KV cache full: ", len_, " + ", tokens.size(), " tokens exceed its capacity of ", cap_, " positions");
  for (int32_t t : tokens)
    if (t < 0 || t >= V_) fail("token id ", t, " is outside the model's vocabulary [0, ", V_, ")");
  for (size_t i = 0; i < tokens.size(); i += size_t(chunk_))
    forward_chunk(tokens.data() + i, int(std::min(tokens.size() - i, size_t(chunk_))));
  return logits();
}

void KvCacheDecoder::truncate(int n) {
  if (n < 0 || n > len_) fail("KV cache truncate(", n, "): expected 0 <= n <= ", len_);
  len_ = n;
}

void KvCacheDecoder::forward_chunk(const int32_t* tokens, int n) {
  const Weights& w = model_.weights();
  buf_.forward(w, model_.config(), cache_, tokens, len_, n);
  len_ += n;
  // Only the last row's next-token logits are needed.
  rmsnorm_forward(lnf_, rstdf_, buf_.x.slice0(n - 1, n), w.final_norm, float(model_.config().norm_eps));
  linear_forward(logits_, lnf_, w.lm_head);
}

}  // namespace dt
