#include "eval/needle_eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/rng.hpp"
#include "data/tokenizer.hpp"
#include "eval/analysis_forward.hpp"
#include "eval/needle.hpp"

namespace dt {

double NeedleEvalResult::mean_accuracy() const {
  double s = 0;
  for (double a : accuracy) s += a;
  return accuracy.empty() ? 0.0 : s / double(accuracy.size());
}

AllocationShare NeedleEvalResult::layer_mean(size_t map) const {
  AllocationShare m;
  const std::vector<AllocationShare>& layers = allocation[map];
  for (const AllocationShare& a : layers) m.answer += a.answer, m.noise += a.noise, m.question += a.question;
  const double n = double(std::max<size_t>(1, layers.size()));
  return {m.answer / n, m.noise / n, m.question / n};
}

std::string greedy_answer(AnalysisForward& af, const Tokenizer& tok, std::span<const int32_t> prompt,
                          const std::string& expected, int max_tokens) {
  af.reset();
  af.forward(prompt);
  const int64_t known = std::min<int64_t>(tok.vocab_size(), af.config().vocab_size);
  std::vector<int32_t> out;
  std::string text;
  for (int step = 0; step < max_tokens; ++step) {
    const std::vector<float> z = af.last_logits();
    const int32_t next = int32_t(std::max_element(z.begin(), z.begin() + known) - z.begin());
    if (next == tok.eos_id()) break;
    out.push_back(next);
    text = tok.decode(out);
    const std::string run = first_digit_run(text);
    if (!expected.empty() && !run.empty()) {
      const size_t run_end = text.find(run) + run.size();
      if (run_end < text.size()) break;  // the digit run has ended
      if (run.size() > expected.size() || expected.compare(0, run.size(), run) != 0) break;  // cannot match
    }
    if (step + 1 < max_tokens) af.forward(std::span<const int32_t>(&next, 1));
  }
  return text;
}

namespace {

// Adds one sample's allocation (captured rows at the answer position) to acc[map][layer].
void add_allocation(std::vector<std::vector<AllocationShare>>& acc, const AnalysisForward& af,
                    const NeedleSample& s, int heads) {
  const Needle& ans = s.needles[size_t(s.query)];
  for (const AttentionRow& r : af.attention_rows()) {
    const bool diff = !r.a2.empty();
    const float lam = r.lambda;  // DIFF: λ of the layer; DIFF V2: σ(λ) of the row and head
    for (size_t m = 0; m < acc.size(); ++m) {
      AllocationShare sh;
      for (int64_t j = 0; j <= r.row; ++j) {
        // maps: softmax | effective = a1 − λ·a2, a1, a2
        const double a = !diff ? r.a1[size_t(j)]
                         : m == 0 ? double(r.a1[size_t(j)]) - double(lam) * r.a2[size_t(j)]
                         : m == 1 ? r.a1[size_t(j)]
                                  : r.a2[size_t(j)];
        if (j >= ans.start && j < ans.end) sh.answer += a;
        else if (j < s.question_start) sh.noise += a;
        else sh.question += a;
      }
      AllocationShare& t = acc[m][size_t(r.layer)];
      t.answer += sh.answer / heads, t.noise += sh.noise / heads, t.question += sh.question / heads;
    }
  }
}

}  // namespace

NeedleEvalResult evaluate_needles(const Transformer& model, const Tokenizer& tok, std::span<const int32_t> haystack,
                                  const NeedleEvalOptions& opt) {
  if (opt.lengths.empty()) fail("needle retrieval: no context lengths (--lengths)");
  if (opt.depths.empty()) fail("needle retrieval: no depths (--depths)");
  if (opt.trials < 1) fail("needle retrieval: ", opt.trials, " trials; expected at least 1");
  const ModelConfig& cfg = model.config();
  const int heads = cfg.n_heads;  // the heads of the model's kind: differential heads or softmax heads
  AnalysisForward af(model);
  af.options().logit_bits = opt.logit_bits;
  const bool allocation = opt.allocation && opt.logit_bits == 0;

  NeedleEvalResult res;
  res.lengths = opt.lengths;
  res.depths = opt.depths;
  res.needles = opt.needles;
  res.queries = opt.queries;
  res.samples_per_cell = int64_t(opt.trials) * opt.queries;
  res.accuracy.assign(opt.depths.size() * opt.lengths.size(), 0.0);
  if (allocation) {
    res.maps = cfg.attention != AttentionKind::Standard ? std::vector<std::string>{"diff", "a1", "a2"}
                                                        : std::vector<std::string>{"softmax"};
    res.allocation.assign(res.maps.size(), std::vector<AllocationShare>(size_t(cfg.n_layers)));
  }

  auto last_report = std::chrono::steady_clock::now();
  for (size_t di = 0; di < opt.depths.size(); ++di)
    for (size_t li = 0; li < opt.lengths.size(); ++li) {
      int64_t correct = 0;
      for (int t = 0; t < opt.trials; ++t) {
        NeedleSpec spec;
        spec.length = opt.lengths[li];
        spec.queries = opt.queries;
        spec.seed = rng_bits(opt.seed, hash_name("needle.trial"), uint64_t(t));
        for (int i = 0; i < opt.needles; ++i)  // queried needles at the cell's depth, distractors anywhere
          spec.depths.push_back(i < opt.queries ? opt.depths[di]
                                                : uniform_at(spec.seed, hash_name("needle.depth"), uint64_t(i)));
        for (const NeedleSample& s : make_needle_samples(tok, haystack, spec)) {
          af.clear_captures();
          af.options().capture_rows = {int64_t(s.tokens.size()) - 1};
          if (!allocation) af.options().capture_rows.clear();
          const int max_tokens = int(tok.encode(" " + s.answer + ".").size()) + 3;
          const std::string got = greedy_answer(af, tok, s.tokens, s.answer, max_tokens);
          correct += needle_answer_matches(got, s.answer);
          if (allocation) {
            add_allocation(res.allocation, af, s, heads);
            ++res.allocation_samples;
          }
        }
      }
      res.accuracy[di * opt.lengths.size() + li] = double(correct) / double(res.samples_per_cell);
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_report).count() >= 10) {  // long grids say how far they are
        log_info("needle: ", di * opt.lengths.size() + li + 1, "/", res.accuracy.size(), " cells");
        last_report = now;
      }
    }
  af.clear_captures();
  for (auto& layers : res.allocation)
    for (AllocationShare& a : layers) {
      const double n = double(std::max<int64_t>(1, res.allocation_samples));
      a.answer /= n, a.noise /= n, a.question /= n;
    }
  return res;
}

}  // namespace dt
