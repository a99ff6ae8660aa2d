// The analysis forward: a plain float32 forward pass of one sequence (B = 1)
// through a trained model's weights, with attention written out as full
// score matrices per head, so that evaluation can look inside it:
//   - quantize every attention-logit row to b bits (eval/absmax_quantize.hpp),
//   - keep the attention probabilities of chosen query rows (both softmax
//     maps and λ for DIFF),
//   - accumulate |attention logit| and |hidden state| statistics per layer,
//   - keep the residual stream after each layer.
// It runs the model's one layer forward (model/layer.hpp) with a KV cache and
// this object as the AttentionObserver, so attention is computed as explicit
// score matrices (an evaluation tool for moderate T, not a training path)
// while everything else is what Transformer::forward computes.
//
// Tokens are fed in calls that continue one sequence: forward() runs tokens at
// positions [position(), position() + n) against the K/V of every earlier
// position (a KV cache) and appends their own, so greedy decoding costs one
// token's work per step. reset() starts a new sequence.
//
//   AnalysisForward af(*em.model);
//   af.options().capture_rows = {T - 1};
//   af.forward(tokens);                  // (T) ids
//   std::vector<float> z = af.last_logits();
//   for (const AttentionRow& r : af.attention_rows()) ...
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "eval/abs_histogram.hpp"
#include "model/transformer.hpp"

namespace dt {

struct AnalysisOptions {
  int logit_bits = 0;                 // 0: exact; 2..16: absmax quantization of each logit row
  std::vector<int64_t> capture_rows;  // absolute query positions whose attention rows are kept
  bool logit_stats = false;           // accumulate |q·k/√d| over causal entries (before quantization)
  bool hidden_stats = false;          // accumulate |x| of the residual stream after each layer
  bool keep_hidden = false;           // keep that residual (n, D) per layer, for the last call
  // Attention scores held at once per map: query rows are processed in blocks
  // of max(1, this / keys) rows, bounding memory at long contexts (64 MiB).
  int64_t max_score_floats = int64_t(1) << 24;
};

// One query row of one head's attention, over keys 0..row.
struct AttentionRow {
  int layer = 0;
  int head = 0;          // head 0..H−1 of the model's kind (DIFF: differential head)
  int64_t row = 0;       // query position
  std::vector<float> a1;  // softmax probabilities (DIFF: the first map A1; DIFF V2: query head 2h)
  std::vector<float> a2;  // DIFF: the second map A2; DIFF V2: query head 2h+1; empty for standard
  float lambda = 0.f;     // the effective map is a1 − lambda·a2: DIFF's λ of the layer, DIFF V2's σ(λ[row, h])
};

class AnalysisForward : private AttentionObserver {
 public:
  // The model must hold every layer, the embedding and the head (one process,
  // no tensor or pipeline parallelism) and outlive this object; its weights
  // are read, never changed.
  explicit AnalysisForward(const Transformer& model, AnalysisOptions opt = {});

  AnalysisOptions& options() { return opt_; }
  const ModelConfig& config() const { return cfg_; }

  void reset();                                    // empty the KV cache; captures and stats stay
  int64_t position() const { return pos_; }        // tokens run so far in this sequence
  void forward(std::span<const int32_t> tokens);   // positions [position(), position() + n)

  // Logits of rows [r0, r0 + rows) of the last forward call: out (rows, V).
  void logits(float* out, int64_t r0, int64_t rows) const;
  std::vector<float> last_logits() const;          // (V) of the last token fed
  // Sum of next-token NLL over a window of n + 1 tokens: reset, forward the
  // first n, cross-entropy against the last n.
  double loss_sum(std::span<const int32_t> window);

  // Captures, accumulated over calls until clear_captures().
  const std::vector<AttentionRow>& attention_rows() const { return rows_; }
  const std::vector<float>& lambdas() const { return lambda_; }  // λ per layer (DIFF), else empty
  const std::vector<AbsStats>& logit_stats() const { return logit_stats_; }    // per layer
  const std::vector<AbsStats>& hidden_stats() const { return hidden_stats_; }  // per layer
  const std::vector<std::vector<float>>& hidden() const { return hidden_; }    // per layer (n, D), last call
  void clear_captures();

 private:
  // AttentionObserver: logit statistics and quantization, captured rows.
  int64_t max_score_floats() const override { return opt_.max_score_floats; }
  void on_logits(int layer, int64_t head, int map, int64_t p0, float* S, int64_t rows, int64_t keys) override;
  void on_probs(int layer, int64_t head, int map, int64_t p0, const float* A, int64_t rows, int64_t keys) override;
  void on_v2_gates(int layer, int64_t p0, const float* lam, int64_t rows, int64_t out_heads) override;
  // Room for n more positions in the cache and n rows in the buffers.
  void reserve(int64_t n);

  const Weights& w_;
  ModelConfig cfg_;
  AnalysisOptions opt_;
  int64_t pos_ = 0, n_last_ = 0;
  size_t first_capture_ = 0;   // rows_ index of the current block's first captured row (map 0)
  std::vector<float> gates_;   // diff_v2: σ(λ) (captured row, out head) of the current layer

  Arena cache_arena_, buf_arena_;
  KvCache cache_;              // grows by doubling
  SequenceBuffers buf_;        // the rows of one call
  Tensor lnf_, rstdf_;         // (rows, D), (rows): final-norm output of the last call, read by logits()

  std::vector<AttentionRow> rows_;
  std::vector<float> lambda_;
  std::vector<AbsStats> logit_stats_, hidden_stats_;
  std::vector<std::vector<float>> hidden_;
};

}  // namespace dt
