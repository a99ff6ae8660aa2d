// The one list of config keys: every section and field in file order, with
// the names of enum values. The reader (config_loader.cpp), the writer
// (config_writer.cpp) and the unknown-key check all walk it.
#pragma once
#include <string>
#include <vector>

#include "core/config.hpp"

namespace dt::config_schema {

template <class E>
struct Choice {
  const char* name;
  E value;
};
constexpr Choice<AttentionKind> kAttention[] = {
    {"diff", AttentionKind::Diff}, {"standard", AttentionKind::Standard}, {"diff_v2", AttentionKind::DiffV2}};
constexpr Choice<Recompute> kRecompute[] = {
    {"none", Recompute::None}, {"attention", Recompute::Attention}, {"full", Recompute::Full}};
constexpr Choice<LrDecay> kDecay[] = {
    {"linear", LrDecay::Linear}, {"cosine", LrDecay::Cosine}, {"constant", LrDecay::Constant}};

// The name of an enum value in its Choice table (config files, exports).
template <class E, size_t N>
const char* choice_name(const Choice<E> (&names)[N], E value) {
  for (const auto& c : names)
    if (c.value == value) return c.name;
  return "?";
}

// Model keys a later stage may change while keeping a checkpoint's weights
// (context extension changes rope_theta; init_std and recompute do not touch
// trained weights). Every other model key must match the checkpoint's.
inline const std::vector<std::string> kModelKeysAStageMayChange = {"rope_theta", "init_std", "recompute"};

// kRequired: the YAML must set it. kUnsetWhenZero (max_steps / max_tokens): 0
// means "not set", so the reader wants a positive value and the writer omits 0.
enum Presence { kOptional, kRequired, kUnsetWhenZero };

// Every key of every section, in file order. V: KeyCollector, Reader or Writer.
template <class C, class V>
void visit_config(C& c, V& v) {
  v.section("model");
  v.field("vocab_size", c.model.vocab_size, kRequired);
  v.field("d_model", c.model.d_model, kRequired);
  v.field("n_layers", c.model.n_layers, kRequired);
  v.field("n_heads", c.model.n_heads, kRequired);
  v.field("n_kv_heads", c.model.n_kv_heads, kRequired);
  v.field("ffn_hidden", c.model.ffn_hidden, kRequired);
  v.field("rope_theta", c.model.rope_theta);
  v.field("norm_eps", c.model.norm_eps);
  v.choice("attention", c.model.attention, kAttention);
  v.field("tie_embeddings", c.model.tie_embeddings);
  v.field("init_std", c.model.init_std);
  v.choice("recompute", c.model.recompute, kRecompute);
  v.section("train");
  v.field("seq_len", c.train.seq_len, kRequired);
  v.field("global_batch_size", c.train.global_batch_size, kRequired);
  v.field("max_steps", c.train.max_steps, kUnsetWhenZero);
  v.field("max_tokens", c.train.max_tokens, kUnsetWhenZero);
  v.field("lr", c.train.lr);
  v.field("min_lr", c.train.min_lr);
  v.field("warmup_steps", c.train.warmup_steps);
  v.choice("decay", c.train.decay, kDecay);
  v.field("beta1", c.train.beta1);
  v.field("beta2", c.train.beta2);
  v.field("adam_eps", c.train.adam_eps);
  v.field("weight_decay", c.train.weight_decay);
  v.field("grad_clip", c.train.grad_clip);
  v.field("seed", c.train.seed);
  v.field("log_every", c.train.log_every);
  v.field("run_dir", c.train.run_dir);
  v.section("data");
  v.field("tokenizer", c.data.tokenizer);
  v.datasets("datasets", c.data.datasets);
  v.field("long_doc_tokens", c.data.long_doc_tokens);
  v.field("long_doc_factor", c.data.long_doc_factor);
  v.section("parallel");
  v.field("tp", c.parallel.tp);
  v.field("pp", c.parallel.pp);
  v.field("cp", c.parallel.cp);
  v.field("zero", c.parallel.zero);
  v.field("micro_batch_size", c.parallel.micro_batch_size);
  v.field("grad_bucket_mb", c.parallel.grad_bucket_mb);
  v.section("checkpoint");
  v.field("dir", c.checkpoint.dir);
  v.field("every_steps", c.checkpoint.every_steps);
  v.field("keep_last", c.checkpoint.keep_last);
  v.field("init_from", c.checkpoint.init_from);
  v.field("retry_failed_save", c.checkpoint.retry_failed_save);
  v.section("runtime");
  v.field("device", c.runtime.device);
  v.field("threads", c.runtime.threads);
  v.field("deterministic", c.runtime.deterministic);
  v.field("step_timeout_s", c.runtime.step_timeout_s);
}
inline const std::vector<std::string> kDatasetKeys = {"path", "weight"};

// Keys renamed since earlier versions (to the names Megatron-LM and llm.c
// users know). A config written by hand with an old name is refused, naming
// the new one; a config difftron saved (checkpoint manifest, run directory)
// is read under either name.
struct Renamed {
  const char* section;
  const char* old_key;
  const char* new_key;
  const char* meaning;
};
constexpr Renamed kRenamedKeys[] = {
    {"train", "batch_size", "global_batch_size", "sequences per optimizer step, summed over data-parallel ranks"},
    {"parallel", "micro_batch", "micro_batch_size", "sequences per micro-batch per data-parallel rank"},
};

}  // namespace dt::config_schema
