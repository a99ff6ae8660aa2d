// The multi-needle retrieval experiment over a depth × context-length grid
// (DIFF Transformer paper §3.3), scored by exact match of the greedily decoded
// number, and the attention allocation of paper Table 3: how much of the
// attention at the answer position lands on the queried needle versus the
// rest of the context.
//
// Cell (depth δ, length L), trial t: needles 0..R−1 (the queried ones) are
// requested at depth δ (laid end to end there), the N − R distractors at
// seeded uniform depths; trial t draws its cities, numbers, haystack offset
// and distractor depths from (seed, t), the same for every cell. Each of the
// R queries is one sequence, so a cell scores trials·R answers.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace dt {

class Tokenizer;
class AnalysisForward;

struct NeedleEvalOptions {
  std::vector<int64_t> lengths;  // context lengths L (tokens, question included)
  std::vector<double> depths;    // depths of the queried needles, each in [0, 1]
  int needles = 1;               // N
  int queries = 1;               // R ≤ N
  int trials = 1;
  uint64_t seed = 0;
  int logit_bits = 0;            // attention-logit quantization while decoding (0: none)
  bool allocation = true;        // measure the attention allocation (bits 0 only)
};

// Attention mass in one query row, summed over key groups: the queried
// needle's tokens, the rest of the context before the question, and the
// question itself. For a softmax map they add to 1; for the DIFF map
// A1 − λ·A2 to 1 − λ (entries may be negative; sums are signed).
struct AllocationShare {
  double answer = 0, noise = 0, question = 0;
};

struct NeedleEvalResult {
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  std::vector<double> accuracy;  // depths × lengths, row-major
  int64_t samples_per_cell = 0;
  int needles = 0, queries = 0;
  // Allocation at the last prompt position (the one predicting the answer),
  // per layer, averaged over heads and every sample: maps[m] names
  // allocation[m]: "diff" (A1 − λ·A2), "a1", "a2" for DIFF and DIFF V2 (λ = σ(λ_t) per row and
  // head, A1/A2 its query heads 2h, 2h+1); "softmax" for the baseline.
  std::vector<std::string> maps;
  std::vector<std::vector<AllocationShare>> allocation;  // [map][layer]
  int64_t allocation_samples = 0;

  double mean_accuracy() const;
  AllocationShare layer_mean(size_t map) const;  // averaged over layers
};

NeedleEvalResult evaluate_needles(const Transformer& model, const Tokenizer& tok, std::span<const int32_t> haystack,
                                  const NeedleEvalOptions& opt);

// Greedy continuation of `prompt` (the analysis forward is reset first), at
// most max_tokens tokens, decoded to text. Stops early once the answer is
// settled: its first digit run has ended, or can no longer equal `expected`
// (an empty `expected` never stops early), or EOS. Only ids the tokenizer
// knows are candidates (the model's vocabulary may be padded).
std::string greedy_answer(AnalysisForward& af, const Tokenizer& tok, std::span<const int32_t> prompt,
                          const std::string& expected, int max_tokens);

// Prints the depth × length table and the allocation summary; writes
// OUT/needle.csv (depth, then one column per length), OUT/needle_heatmap.png
// and OUT/attention_allocation.csv (layer,map,answer_span,noise,question;
// layer "mean" rows last). Returns the paths written.
void print_needle(const NeedleEvalResult& r);
std::vector<std::string> write_needle(const std::string& out_dir, const NeedleEvalResult& r,
                                      const std::string& model_label);

}  // namespace dt
