// The run configuration, one struct per YAML section. Loaded and validated by
// core/config_loader.cpp; every other part reads these structs only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

// diff: DIFF Transformer; standard: the baseline; diff_v2: DIFF V2 (DESIGN §2).
enum class AttentionKind { Diff, Standard, DiffV2 };
// "DIFF Transformer", "Transformer", "DIFF V2 Transformer"; short: "DIFF", "Transformer", "DIFF V2".
const char* model_kind_name(AttentionKind kind, bool short_name = false);
// Activation recomputation: what the backward recomputes instead of storing.
enum class Recompute { None, Attention, Full };

struct ModelConfig {
  int64_t vocab_size = 0;   // padded vocabulary V
  int d_model = 0;          // D
  int n_layers = 0;         // L
  int n_heads = 0;          // H: heads of the model's kind (diff: differential heads of two sub-heads;
                            // diff_v2: output heads, each of two query heads)
  int n_kv_heads = 0;       // KV (H % KV == 0), counted like n_heads
  int ffn_hidden = 0;       // Fh
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  AttentionKind attention = AttentionKind::Diff;
  bool tie_embeddings = false;
  double init_std = 0.02;
  Recompute recompute = Recompute::None;

  // Attention maps per head: a differential head has two sub-heads, each with
  // its own q and k of head_dim; a standard head has one.
  int maps_per_head() const { return attention == AttentionKind::Diff ? 2 : 1; }
  int head_dim() const { return d_model / (maps_per_head() * n_heads); }  // d = D/(2H) diff, D/H standard
  int kv_dim() const { return maps_per_head() * n_kv_heads * head_dim(); }  // rows of Wk and Wv
  // Rows of Wq: D, or 2D for diff_v2 (2H query heads of D/H).
  int q_dim() const { return attention == AttentionKind::DiffV2 ? 2 * d_model : d_model; }
  // λ_init = 0.8 − 0.6·exp(−0.3·l), l 0-based (DESIGN §2).
  static double lambda_init(int layer);
  friend bool operator==(const ModelConfig&, const ModelConfig&) = default;
};

enum class LrDecay { Linear, Cosine, Constant };

struct TrainConfig {
  int seq_len = 0;            // T
  int64_t global_batch_size = 0;  // sequences per optimizer step, all dp ranks
  int64_t max_steps = 0;      // exactly one of max_steps / max_tokens is set
  int64_t max_tokens = 0;
  double lr = 3e-4;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  LrDecay decay = LrDecay::Cosine;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;     // 0 disables clipping
  uint64_t seed = 1234;
  int log_every = 1;
  std::string run_dir = "runs/default";
  friend bool operator==(const TrainConfig&, const TrainConfig&) = default;
};

struct DatasetSpec {
  std::string path;  // directory, file or glob of HDF5 shards
  double weight = 1.0;
  friend bool operator==(const DatasetSpec&, const DatasetSpec&) = default;
};

struct DataConfig {
  std::string tokenizer = "byte";  // "byte", a tiktoken rank file or a Hugging Face tokenizer.json
  std::vector<DatasetSpec> datasets;
  // Long-context data: windows that lie inside a document of at least
  // long_doc_tokens tokens are drawn long_doc_factor times as often (0 = off).
  int64_t long_doc_tokens = 0;
  int long_doc_factor = 1;
  friend bool operator==(const DataConfig&, const DataConfig&) = default;
};

struct ParallelConfig {
  int tp = 1, pp = 1, cp = 1;
  int zero = 0;            // 0 or 1
  int64_t micro_batch_size = 1;  // sequences per micro-batch per dp rank
  // Gradients are reduced over data parallelism in buckets of about this many
  // MB, each started as soon as the backward has finished it (0: one per layer).
  double grad_bucket_mb = 25;
  friend bool operator==(const ParallelConfig&, const ParallelConfig&) = default;
};

struct CheckpointConfig {
  std::string dir;          // empty: no checkpoints
  std::string init_from;    // start from this checkpoint's weights (fresh optimizer, schedule, data)
  int64_t every_steps = 0;
  int keep_last = 3;
  // A save that fails (disk full, I/O error) ends the run with one line after
  // removing its partial files; true keeps training and tries again at the
  // next interval (the previous checkpoint stays the newest).
  bool retry_failed_save = false;
  friend bool operator==(const CheckpointConfig&, const CheckpointConfig&) = default;
};

struct RuntimeConfig {
  std::string device = "cpu";  // cpu | cuda
  int threads = 0;             // 0: every core this rank may use
  // Backward reductions in a fixed order, so a step repeats bit for bit (exact
  // resume); false lets CUDA kernels use faster float atomics (ops::set_deterministic).
  bool deterministic = true;
  // The watchdog ends the job when a step makes no progress for this long
  // (seconds); 0: 10× the median step time, at least 300 s (1800 s until
  // three steps have been timed).
  double step_timeout_s = 0;
  friend bool operator==(const RuntimeConfig&, const RuntimeConfig&) = default;
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  RuntimeConfig runtime;
  std::string source;  // the file it came from, for messages

  // Sequences per micro-batch summed over data-parallel ranks, and the number
  // of micro-batches accumulated per optimizer step.
  int64_t grad_accum_steps(int dp) const { return train.global_batch_size / (parallel.micro_batch_size * dp); }
  // max_steps, or ceil(max_tokens / (global_batch_size·seq_len)): a token budget that
  // is not a whole number of batches rounds up to one more full step.
  int64_t total_steps() const;
  // Every field, `source` included (tests compare a round trip with it set equal).
  friend bool operator==(const Config&, const Config&) = default;
};

// Parses YAML text/file into a validated Config. `overrides` are "a.b=value"
// strings from --set, applied to the YAML tree before validation: the value is
// parsed as a YAML scalar (or flow node), `data.datasets[0].path=x` reaches into
// the list, and a value of `null` (or nothing) removes the key, e.g.
// `--set train.max_tokens=null --set train.max_steps=20`. Throws dt::Error with
// one line "<source>: <key.path>: <what was expected>".
Config load_config_file(const std::string& path, const std::vector<std::string>& overrides = {});
Config load_config_text(const std::string& yaml, const std::vector<std::string>& overrides = {},
                        const std::string& source = "<string>");
// A config difftron wrote (a checkpoint manifest's, a run directory's
// config.yaml): as above, and the key names of earlier versions
// (config_schema::kRenamedKeys) are read as the new ones.
Config load_saved_config_text(const std::string& yaml, const std::string& source);
Config load_saved_config_file(const std::string& path);
// Range and combination checks on a filled-in Config (load_config_* runs them;
// call it on a Config built in code). Throws dt::Error "<c.source>: <key.path>: ...".
void validate_config(const Config& c);
// Checks divisibility against a world size (dp derived from it).
void validate_layout(const Config& c, int world_size);
// The config as YAML (for run directories and checkpoint manifests).
std::string config_to_yaml(const Config& c);
// The first model key (of the schema, less kModelKeysAStageMayChange) whose
// value differs, as "model.KEY: A in the checkpoint, B in the config"; "" when
// the checkpoint's weights fit the model `now` describes.
std::string model_config_difference(const ModelConfig& stored, const ModelConfig& now);

}  // namespace dt
