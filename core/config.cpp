// What the numbers in a Config mean: λ_init, the run length, and the range and
// combination rules every config must satisfy (core/config_loader.cpp reads
// the YAML and then calls validate_config).
#include "core/config.hpp"

#include <climits>
#include <cmath>

#include "core/error.hpp"

namespace dt {

// λ_init = 0.8 − 0.6·exp(−0.3·l), l the 0-based layer index (DESIGN §2).
double ModelConfig::lambda_init(int layer) { return 0.8 - 0.6 * std::exp(-0.3 * layer); }

const char* model_kind_name(AttentionKind kind, bool short_name) {
  switch (kind) {
    case AttentionKind::Diff:
      return short_name ? "DIFF" : "DIFF Transformer";
    case AttentionKind::Standard:
      return "Transformer";
    case AttentionKind::DiffV2:
      return short_name ? "DIFF V2" : "DIFF V2 Transformer";
  }
  return "?";
}

// A token budget that is not a whole number of batches rounds up: the last
// step is a full batch, so a run sees at least max_tokens tokens.
int64_t Config::total_steps() const {
  if (train.max_steps > 0) return train.max_steps;
  const int64_t per_step = train.global_batch_size * train.seq_len;
  if (per_step <= 0) return 0;  // not validated; validate_config rejects this
  return (train.max_tokens + per_step - 1) / per_step;
}

namespace {

template <class... Args>
[[noreturn]] void bad(const Config& c, const char* path, const Args&... args) {
  fail(c.source, ": ", path, ": ", args...);
}
template <class T>
void at_least(const Config& c, const char* path, T v, T lo) {
  if (v < lo) {
    if constexpr (std::is_integral_v<T>) {
      if (lo == 1) bad(c, path, "expected a positive integer, got ", v);
      bad(c, path, "expected an integer >= ", lo, ", got ", v);
    }
    bad(c, path, "expected a number >= ", lo, ", got ", v);
  }
}
void above_zero(const Config& c, const char* path, double v) {
  if (!(v > 0)) bad(c, path, "expected a number > 0, got ", v);
}
void in_unit_interval(const Config& c, const char* path, double v) {
  if (!(v >= 0 && v < 1)) bad(c, path, "expected a number in [0, 1), got ", v);
}

void validate_model(const Config& c) {
  const ModelConfig& m = c.model;
  at_least<int64_t>(c, "model.vocab_size", m.vocab_size, 1);
  at_least(c, "model.d_model", m.d_model, 1);
  at_least(c, "model.n_layers", m.n_layers, 1);
  at_least(c, "model.n_heads", m.n_heads, 1);
  at_least(c, "model.n_kv_heads", m.n_kv_heads, 1);
  at_least(c, "model.ffn_hidden", m.ffn_hidden, 1);
  above_zero(c, "model.rope_theta", m.rope_theta);
  above_zero(c, "model.norm_eps", m.norm_eps);
  above_zero(c, "model.init_std", m.init_std);
  // head_dim = D / (maps·H): two maps per differential head, one per standard head.
  const int64_t maps = m.maps_per_head(), sub_heads = maps * int64_t(m.n_heads);
  const std::string formula = maps == 2 ? "d_model/(2*n_heads)" : "d_model/n_heads";
  const std::string divisor = maps == 2 ? "2*n_heads=" : "n_heads=";
  if (m.d_model % sub_heads != 0)
    bad(c, "model.n_heads", "d_model ", m.d_model, " is not divisible by ", divisor, sub_heads, " (head_dim = ",
        formula, " must be an integer)");
  if (m.head_dim() % 2 != 0)
    bad(c, "model.n_heads", "head_dim = ", formula, " = ", m.d_model, "/", sub_heads, " = ", m.head_dim(),
        " is odd (RoPE rotates pairs of dimensions, so head_dim must be even)");
  if (m.n_heads % m.n_kv_heads != 0)
    bad(c, "model.n_kv_heads", "n_heads ", m.n_heads, " is not divisible by n_kv_heads ", m.n_kv_heads,
        " (each kv head serves n_heads/n_kv_heads heads)");
}

void validate_train(const Config& c) {
  const TrainConfig& t = c.train;
  at_least(c, "train.seq_len", t.seq_len, 1);
  at_least<int64_t>(c, "train.global_batch_size", t.global_batch_size, 1);
  at_least<int64_t>(c, "train.max_steps", t.max_steps, 0);
  at_least<int64_t>(c, "train.max_tokens", t.max_tokens, 0);
  if (t.max_steps > 0 && t.max_tokens > 0)
    bad(c, "train.max_steps", "set exactly one of train.max_steps and train.max_tokens, not both");
  if (t.max_steps == 0 && t.max_tokens == 0)
    bad(c, "train.max_steps", "set exactly one of train.max_steps and train.max_tokens (the run length)");
  if (!(t.lr > 0)) bad(c, "train.lr", "expected a learning rate > 0, got ", t.lr);
  at_least(c, "train.min_lr", t.min_lr, 0.0);
  if (t.min_lr > t.lr)
    bad(c, "train.min_lr", "min_lr ", t.min_lr, " is greater than lr ", t.lr,
        " (the schedule decays from lr down to min_lr)");
  at_least<int64_t>(c, "train.warmup_steps", t.warmup_steps, 0);
  if (t.warmup_steps > c.total_steps())
    bad(c, "train.warmup_steps", t.warmup_steps, " warmup steps exceed the run's ", c.total_steps(),
        " total steps");
  in_unit_interval(c, "train.beta1", t.beta1);
  in_unit_interval(c, "train.beta2", t.beta2);
  above_zero(c, "train.adam_eps", t.adam_eps);
  at_least(c, "train.weight_decay", t.weight_decay, 0.0);
  at_least(c, "train.grad_clip", t.grad_clip, 0.0);  // 0 disables clipping
  at_least(c, "train.log_every", t.log_every, 1);
  if (t.run_dir.empty()) bad(c, "train.run_dir", "expected a directory, got an empty string");
}

void validate_data(const Config& c) {
  if (c.data.tokenizer.empty())
    bad(c, "data.tokenizer", "expected \"byte\", a tiktoken rank file or a tokenizer.json, got an empty string");
  for (size_t i = 0; i < c.data.datasets.size(); ++i) {
    const DatasetSpec& d = c.data.datasets[i];
    const std::string p = "data.datasets[" + std::to_string(i) + "]";
    if (d.path.empty()) bad(c, (p + ".path").c_str(), "expected a shard directory, file or glob, got \"\"");
    if (!(d.weight > 0)) bad(c, (p + ".weight").c_str(), "expected a blending weight > 0, got ", d.weight);
  }
  at_least<int64_t>(c, "data.long_doc_tokens", c.data.long_doc_tokens, 0);
  at_least(c, "data.long_doc_factor", c.data.long_doc_factor, 1);
}

void validate_parallel(const Config& c) {
  const ParallelConfig& p = c.parallel;
  const ModelConfig& m = c.model;
  at_least(c, "parallel.tp", p.tp, 1);
  at_least(c, "parallel.pp", p.pp, 1);
  at_least(c, "parallel.cp", p.cp, 1);
  if (p.zero != 0 && p.zero != 1) bad(c, "parallel.zero", "expected 0 or 1 (ZeRO stage), got ", p.zero);
  at_least<int64_t>(c, "parallel.micro_batch_size", p.micro_batch_size, 1);
  if (p.micro_batch_size > INT_MAX)
    bad(c, "parallel.micro_batch_size", "expected at most ", INT_MAX, " sequences per micro-batch, got ", p.micro_batch_size);
  if (!(p.grad_bucket_mb >= 0)) bad(c, "parallel.grad_bucket_mb", "expected a size in MB ≥ 0, got ", p.grad_bucket_mb);
  if (c.train.global_batch_size % p.micro_batch_size != 0)
    bad(c, "train.global_batch_size", "global_batch_size ", c.train.global_batch_size,
        " is not divisible by parallel.micro_batch_size ", p.micro_batch_size,
        " (an optimizer step accumulates whole micro-batches)");
  // Tensor parallelism splits whole kv heads (and their differential heads),
  // FFN rows and vocabulary rows evenly (DESIGN §4).
  if (m.n_kv_heads % p.tp != 0)
    bad(c, "parallel.tp", "n_kv_heads ", m.n_kv_heads, " is not divisible by tp=", p.tp,
        " (tensor parallelism splits whole kv heads)");
  if (m.ffn_hidden % p.tp != 0)
    bad(c, "parallel.tp", "ffn_hidden ", m.ffn_hidden, " is not divisible by tp=", p.tp);
  if (m.vocab_size % p.tp != 0)
    bad(c, "parallel.tp", "vocab_size ", m.vocab_size, " is not divisible by tp=", p.tp,
        " (pad the vocabulary to a multiple of tp)");
  if (p.pp > m.n_layers)
    bad(c, "parallel.pp", "pp=", p.pp, " pipeline stages but only n_layers=", m.n_layers,
        " (every stage needs at least one layer)");
  // Load-balanced context parallelism cuts each sequence into 2·cp chunks.
  if (p.cp > 1 && c.train.seq_len % (2 * p.cp) != 0)
    bad(c, "parallel.cp", "seq_len ", c.train.seq_len, " is not divisible by 2*cp=", 2 * p.cp,
        " (context parallelism gives each rank two equal chunks)");
}

}  // namespace

void validate_config(const Config& c) {
  validate_model(c);
  validate_train(c);
  validate_data(c);
  validate_parallel(c);
  at_least<int64_t>(c, "checkpoint.every_steps", c.checkpoint.every_steps, 0);
  at_least(c, "checkpoint.keep_last", c.checkpoint.keep_last, 1);
  if (c.checkpoint.every_steps > 0 && c.checkpoint.dir.empty())
    bad(c, "checkpoint.dir", "every_steps is ", c.checkpoint.every_steps,
        " but no checkpoint directory is set (expected a path, e.g. runs/x/checkpoints)");
  if (c.runtime.device != "cpu" && c.runtime.device != "cuda")
    bad(c, "runtime.device", "expected cpu or cuda, got '", c.runtime.device, "'");
  // The CUDA attention kernels are built for these head dims (kernels/cuda/flash_attention.cuh).
  const int d = c.model.head_dim();
  if (c.runtime.device == "cuda" && d != 64 && d != 128)
    bad(c, "model.n_heads", "runtime.device: cuda needs head_dim = ",
        c.model.maps_per_head() == 2 ? "d_model/(2·n_heads)" : "d_model/n_heads", " of 64 or 128, got ", d,
        " (d_model ", c.model.d_model, ", n_heads ", c.model.n_heads, ")");
  at_least(c, "runtime.threads", c.runtime.threads, 0);
  at_least(c, "runtime.step_timeout_s", c.runtime.step_timeout_s, 0.0);
}

void validate_layout(const Config& c, int world_size) {
  const ParallelConfig& p = c.parallel;
  const int group = p.tp * p.pp * p.cp;
  if (world_size < 1 || world_size % group != 0)
    fail(c.source, ": parallel: world size ", world_size, " is not a multiple of tp*pp*cp = ", p.tp, "*", p.pp,
         "*", p.cp, " = ", group, " (launch a multiple of ", group, " ranks or change parallel.tp/pp/cp)");
  const int dp = world_size / group;
  if (c.train.global_batch_size % (p.micro_batch_size * dp) != 0)
    fail(c.source, ": train.global_batch_size: ", c.train.global_batch_size,
         " is not divisible by parallel.micro_batch_size*dp = ",
         p.micro_batch_size, "*", dp, " = ", p.micro_batch_size * dp, " (dp = world size ", world_size, " / tp*pp*cp ",
         group, ")");
  // The pipeline schedule counts micro-batches in an int.
  if (c.grad_accum_steps(dp) > INT_MAX)
    fail(c.source, ": train.global_batch_size: ", c.train.global_batch_size, " / (parallel.micro_batch_size*dp = ", p.micro_batch_size * dp,
         ") = ", c.grad_accum_steps(dp), " micro-batches per step; expected at most ", INT_MAX);
}

}  // namespace dt
