// difftron inspect PATH: what a checkpoint holds, read through the manifest
// and CheckpointReader only (DESIGN §6), with every file's checksum verified.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/config_schema.hpp"
#include "core/error.hpp"
#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "checkpoint/checkpoint_export.hpp"

namespace dt {

namespace {

// λ of one layer (DESIGN §2) in double from the stored fp32 vectors:
// exp(λq1·λk1) − exp(λq2·λk2) + λ_init, dot products summed in index order.
double layer_lambda(const std::vector<float>& q1, const std::vector<float>& k1, const std::vector<float>& q2,
                    const std::vector<float>& k2, int layer) {
  double d1 = 0, d2 = 0;
  for (size_t i = 0; i < q1.size(); ++i) {
    d1 += double(q1[i]) * double(k1[i]);
    d2 += double(q2[i]) * double(k2[i]);
  }
  return std::exp(d1) - std::exp(d2) + ModelConfig::lambda_init(layer);
}

void print_lambdas(const CheckpointModel& cm) {
  const ModelConfig& m = cm.config.model;
  if (m.attention != AttentionKind::Diff) {
    std::printf("lambda: %s\n", m.attention == AttentionKind::DiffV2 ? "per token, from lambda_proj (diff_v2)"
                                                                       : "none (standard attention)");
    return;
  }
  std::printf("lambda (per layer, in double: exp(lambda_q1.lambda_k1) - exp(lambda_q2.lambda_k2) + lambda_init):\n");
  for (int l = 0; l < m.n_layers; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".attn.lambda_";
    auto v = [&](const char* s) {
      const auto spec = std::find_if(cm.registry.begin(), cm.registry.end(),
                                     [&](const ParamSpec& p) { return p.name == pre + s; });
      DT_CHECK(spec != cm.registry.end(), pre + s);
      return cm.reader.assemble(*spec, "param");
    };
    const double lam = layer_lambda(v("q1"), v("k1"), v("q2"), v("k2"), l);
    std::printf("  layer %d: lambda_init %.9f  lambda %.9f\n", l, ModelConfig::lambda_init(l), lam);
  }
}

void print_tensors(const CheckpointModel& cm) {
  size_t wname = 4, wshape = 5;
  int64_t total = 0;
  for (const ParamSpec& p : cm.registry) {
    wname = std::max(wname, p.name.size());
    wshape = std::max(wshape, shape_text(p.shape).size());
    total += p.numel();
  }
  int with_moments = 0;
  std::printf("tensors: %zu (%lld parameters)\n", cm.registry.size(), static_cast<long long>(total));
  std::printf("  %-*s  %-*s  %-5s  %-14s  %s\n", int(wname), "name", int(wshape), "shape", "dtype", "l2_norm", "adam");
  for (const ParamSpec& p : cm.registry) {
    const std::vector<float> w = cm.reader.assemble(p, "param");
    double ss = 0;
    for (float x : w) ss += double(x) * double(x);
    const bool moments = cm.reader.has(p.name, "exp_avg") && cm.reader.has(p.name, "exp_avg_sq");
    with_moments += moments;
    // The checkpoint format stores every tensor as fp32 masters (DESIGN §6).
    std::printf("  %-*s  %-*s  %-5s  %-14.6e  %s\n", int(wname), p.name.c_str(), int(wshape),
                shape_text(p.shape).c_str(), "f32", std::sqrt(ss), moments ? "m,v" : "-");
  }
  std::printf("adam moments: %d of %zu tensors\n", with_moments, cm.registry.size());
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  std::string path;
  CommandLine cl("inspect", "usage: difftron inspect PATH\n",
                 "Prints what a checkpoint holds: step, tokens seen, data state, the parallel\n"
                 "layout it was saved with, a summary of its config, λ_init and the current λ\n"
                 "of every layer (diff models), and a table of tensors (global shape, dtype,\n"
                 "L2 norm of the weights, whether Adam moments are stored). Every file's size\n"
                 "and crc32 are verified first; a mismatch is an error naming the file.\n");
  cl.positional("PATH", path,
                "a step_<N> checkpoint directory, or a checkpoint root (then the\n"
                "newest complete checkpoint in it)");
  if (!cl.parse(argc, argv)) return 0;
  if (path.empty())
    throw UsageError("missing PATH (usage: difftron inspect PATH; a step_<N> directory or a checkpoint root)");

  const CheckpointModel cm = open_checkpoint_model(path);
  const CheckpointManifest& man = cm.reader.manifest();
  const ModelConfig& m = cm.config.model;
  const TrainConfig& t = cm.config.train;
  std::printf("checkpoint: %s\n", cm.reader.dir().c_str());
  std::printf("step: %lld of %lld  tokens seen: %lld  data state: %lld samples consumed\n",
              static_cast<long long>(man.step), static_cast<long long>(man.total_steps),
              static_cast<long long>(man.tokens_seen), static_cast<long long>(man.data_state));
  std::printf("layout: tp %d  pp %d  dp %d  zero %d  (%zu files)\n", man.tp, man.pp, man.dp, man.zero,
              man.files.size());
  std::printf("model: attention %s  vocab %lld  d_model %d  layers %d  heads %d  kv heads %d  head_dim %d  "
              "ffn %d  rope_theta %g  tie_embeddings %s\n",
              config_schema::choice_name(config_schema::kAttention, m.attention), static_cast<long long>(m.vocab_size),
              m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim(), m.ffn_hidden, m.rope_theta,
              m.tie_embeddings ? "true" : "false");
  std::printf("train: seq_len %d  batch %lld  seed %llu\n", t.seq_len, static_cast<long long>(t.global_batch_size),
              static_cast<unsigned long long>(man.seed));
  print_lambdas(cm);
  print_tensors(cm);
  std::printf("checksums: %zu files OK\n", man.files.size());
  return 0;
}

}  // namespace dt
