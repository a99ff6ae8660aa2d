// Text generation from a trained model: next-token sampling (temperature,
// top-k, nucleus top-p, greedy) and the decoding loop, with the KV-cache
// decoder (eval/generate/kv_cache.hpp) or, as its reference, the full Transformer
// forward over the whole sequence at every step.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "eval/eval_model.hpp"
#include "model/transformer.hpp"

namespace dt {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy (argmax, no randomness)
  int top_k = 0;             // keep the k most likely tokens; 0: off
  double top_p = 1.0;        // keep the smallest most-likely set whose probability reaches p; 1: off
};

// Throws a one-line dt::Error when an option is out of range
// (temperature >= 0, top_k >= 0, 0 < top_p <= 1).
void validate_sampling(const SamplingOptions& s);

// The distribution sample_token draws from, over logits.size() tokens:
// softmax(logits / temperature) restricted to the top-k tokens, then to the
// smallest set of most likely tokens whose probability reaches top_p, and
// renormalised; zero outside the kept set. Temperature 0: one-hot at the
// argmax. Ties keep the lower token id first.
std::vector<double> sampling_probs(std::span<const float> logits, const SamplingOptions& s);
// The most likely token (the lowest id among equals).
int32_t argmax_token(std::span<const float> logits);
// One token drawn from sampling_probs with one 53-bit uniform from rng (none
// when greedy), so a seed reproduces a sample on every platform.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& s, std::mt19937_64& rng);

struct GenerateOptions {
  int max_new_tokens = 64;
  SamplingOptions sampling;
  uint64_t seed = 0;
  bool use_cache = true;     // false: the full forward over the sequence at every step (the reference)
  int64_t vocab_limit = 0;   // sample ids < vocab_limit only (the tokenizer's vocabulary); 0: all V
  int32_t stop_token = -1;   // stop when this id (EOS) is drawn; it is not returned. −1: never
  std::function<void(int32_t)> on_token;  // called with each new token as soon as it is chosen
};

// The new tokens (at most max_new_tokens) that follow `prompt` (non-empty, ids
// in [0, V)). The model must be whole on this process (tp = pp = cp = 1). With
// use_cache = false and a model that is not one sequence of at least
// prompt + max_new_tokens positions, a copy of that shape is built for the run.
std::vector<int32_t> generate(Transformer& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt);
inline std::vector<int32_t> generate(const EvalModel& em, const std::vector<int32_t>& prompt,
                                     const GenerateOptions& opt) {
  return generate(*em.model, prompt, opt);
}

// Logits (V) predicting the token after each of tokens[0..n) by the full
// forward: one sequence padded to the model's seq_len (the causal mask keeps
// the padding from reaching earlier positions). model: micro_batch 1, seq_len >= n.
// Returns a (n·V) row-major copy.
std::vector<float> full_forward_logits(Transformer& model, std::span<const int32_t> tokens);

}  // namespace dt
