#include "eval/generate/generate.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "core/error.hpp"
#include "eval/generate/kv_cache.hpp"
#include "model/memory_estimate.hpp"

namespace dt {

// ---- sampling -----------------------------------------------------------------------

void validate_sampling(const SamplingOptions& s) {
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature))
    fail("temperature ", s.temperature, ": expected a number >= 0 (0: greedy)");
  if (s.top_k < 0) fail("top-k ", s.top_k, ": expected an integer >= 0 (0: off)");
  if (!(s.top_p > 0 && s.top_p <= 1)) fail("top-p ", s.top_p, ": expected a number in (0, 1] (1: off)");
}

int32_t argmax_token(std::span<const float> logits) {
  DT_CHECK(!logits.empty());
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());  // first of equals
}

std::vector<double> sampling_probs(std::span<const float> logits, const SamplingOptions& s) {
  validate_sampling(s);
  const size_t V = logits.size();
  std::vector<double> probs(V, 0.0);
  if (s.temperature == 0) {
    probs[size_t(argmax_token(logits))] = 1.0;
    return probs;
  }
  // Candidates, most likely first; equal logits keep the lower id first.
  std::vector<int32_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  auto more_likely = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const size_t k = s.top_k > 0 ? std::min(V, size_t(s.top_k)) : V;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), more_likely);
  ids.resize(k);

  // softmax(logits / T) over the top-k, in double.
  const double mx = logits[ids[0]], inv_t = 1.0 / s.temperature;
  double sum = 0;
  for (int32_t i : ids) sum += probs[i] = std::exp((double(logits[i]) - mx) * inv_t);
  for (int32_t i : ids) probs[i] /= sum;

  // Nucleus: the shortest prefix (in the order above) whose mass reaches top_p.
  if (s.top_p < 1) {
    size_t keep = 0;
    double mass = 0;
    while (keep < ids.size() && mass < s.top_p) mass += probs[ids[keep++]];
    for (size_t j = keep; j < ids.size(); ++j) probs[ids[j]] = 0;
    for (size_t j = 0; j < keep; ++j) probs[ids[j]] /= mass;
  }
  return probs;
}

int32_t sample_token(std::span<const float> logits, const SamplingOptions& s, std::mt19937_64& rng) {
  if (s.temperature == 0) {
    validate_sampling(s);
    return argmax_token(logits);
  }
  const std::vector<double> probs = sampling_probs(logits, s);
  const double u = double(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  double cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0) continue;
    last = int32_t(i);
    cum += probs[i];
    if (u < cum) return last;
  }
  return last;  // u beyond the rounded total: the last kept token
}

// ---- the reference: the full forward at every step ------------------------------------

std::vector<float> full_forward_logits(Transformer& model, std::span<const int32_t> tokens) {
  const int64_t n = int64_t(tokens.size()), T = model.seq_len(), V = model.config().vocab_size;
  DT_CHECK(model.micro_batch() == 1 && n >= 1 && n <= T, "full_forward_logits: ", n, " tokens, model B ",
           model.micro_batch(), " T ", T);
  // Padding after position n−1 is invisible to rows < n (causal attention);
  // targets −1 make the loss ignore every row and leave the logits in place.
  std::vector<int32_t> seq(size_t(T), 0), targets(size_t(T), -1);
  std::copy(tokens.begin(), tokens.end(), seq.begin());
  model.forward(seq.data(), targets.data());
  const float* z = model.logits().f32();
  return std::vector<float>(z, z + n * V);
}

namespace {

// A copy of `src`'s parameters in a Transformer for one sequence of T positions.
std::unique_ptr<Transformer> reshaped_copy(const Transformer& src, int T) {
  const TransformerBytes need = transformer_bytes(src.config(), 1, T);
  require_memory("--no-cache: the full forward over " + std::to_string(T) + " positions", need.total(), need.parts(),
                 Device::cpu(), 1, "fewer positions (a shorter prompt or fewer new tokens)");
  auto m = std::make_unique<Transformer>(src.config(), 1, T);
  DT_CHECK(m->params().size() == src.params().size());
  for (size_t i = 0; i < m->params().size(); ++i) {
    DT_CHECK(m->params()[i].numel() == src.params()[i].numel(), m->registry()[i].name);
    std::memcpy(m->params()[i].f32(), src.params()[i].f32(), src.params()[i].bytes());
  }
  return m;
}

}  // namespace

// ---- the decoding loop --------------------------------------------------------------------

std::vector<int32_t> generate(Transformer& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt) {
  validate_sampling(opt.sampling);
  const ModelConfig& c = model.config();
  if (prompt.empty()) fail("the prompt is empty; expected at least one token");
  if (opt.max_new_tokens < 0) fail("max-new-tokens ", opt.max_new_tokens, ": expected an integer >= 0");
  if (opt.vocab_limit < 0 || opt.vocab_limit > c.vocab_size)
    fail("vocab_limit ", opt.vocab_limit, ": expected 0 (all) or 1..", c.vocab_size, " (the model's vocabulary)");
  for (int32_t t : prompt)
    if (t < 0 || t >= c.vocab_size)
      fail("prompt token id ", t, " is outside the model's vocabulary [0, ", c.vocab_size, ")");
  const ModelParallel& par = model.parallel();
  if (par.place.tp != 1 || par.place.pp != 1 || par.cp != 1)
    fail("generation needs the whole model on one process (tp = pp = cp = 1)");

  const int64_t total64 = int64_t(prompt.size()) + opt.max_new_tokens;
  if (total64 > (int64_t(1) << 30)) fail("prompt + max-new-tokens = ", total64, " positions: too long");
  const int total = int(total64);
  const size_t V = size_t(opt.vocab_limit > 0 ? opt.vocab_limit : c.vocab_size);
  std::mt19937_64 rng(opt.seed);
  std::vector<int32_t> out;
  out.reserve(size_t(opt.max_new_tokens));
  if (opt.max_new_tokens == 0) return out;

  // Next-token logits after the prompt plus what was generated so far.
  std::unique_ptr<KvCacheDecoder> cache;
  std::unique_ptr<Transformer> copy;
  Transformer* full = nullptr;
  std::vector<int32_t> seq = prompt;
  std::vector<float> ref;
  std::span<const float> logits;
  if (opt.use_cache) {
    cache = std::make_unique<KvCacheDecoder>(model, total);
    logits = cache->append(prompt);
  } else {
    if (model.micro_batch() == 1 && model.seq_len() >= total) {
      full = &model;
    } else {
      copy = reshaped_copy(model, total);
      full = copy.get();
    }
    seq.reserve(size_t(total));
  }
  for (int i = 0; i < opt.max_new_tokens; ++i) {
    if (!opt.use_cache) {
      ref = full_forward_logits(*full, seq);
      logits = std::span<const float>(ref.data() + (seq.size() - 1) * size_t(c.vocab_size), size_t(c.vocab_size));
    }
    const int32_t tok = sample_token(logits.first(V), opt.sampling, rng);
    if (tok == opt.stop_token) break;
    out.push_back(tok);
    if (opt.on_token) opt.on_token(tok);
    if (i + 1 == opt.max_new_tokens) break;  // the last token needs no logits after it
    if (opt.use_cache) logits = cache->next_token_logits(tok);
    else seq.push_back(tok);
  }
  return out;
}

}  // namespace dt
