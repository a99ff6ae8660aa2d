// Long-context memory and speed.
//
//   bench_long_context [--lengths 2048,8192,32768,65536] [--recompute attention]
//
// Part 1 runs one training step (forward + backward) of a tiny DIFF model at
// each sequence length, each in a fresh child process, and prints tokens/s
// and the child's peak resident memory: with the O(T) attention kernel and no
// T×T buffer anywhere, memory grows linearly in T (the per-token column
// stays flat) while compute grows with T² in attention.
//
// Part 2 computes, from the shapes, the memory per GPU of the 3B model at
// 64K tokens (configs/diff-3b-extend-64k.yaml) under several layouts.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/registry.hpp"
#include "model/transformer.hpp"

namespace {

struct Result {
  double tokens_per_s, peak_mb;
};

Result run_child(int T, dt::Recompute rc) {
  int fd[2];
  if (pipe(fd) != 0) std::exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dt::ModelConfig c;
    c.vocab_size = 320;
    c.d_model = 64;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.ffn_hidden = 176;
    c.rope_theta = 640000;
    c.recompute = rc;
    dt::Transformer m(c, 1, T);
    m.init_weights(1);
    std::vector<int32_t> tok(T), tgt(T);
    std::mt19937 rng(1);
    for (int i = 0; i < T; ++i) tok[i] = int32_t(rng() % 257), tgt[i] = int32_t(rng() % 257);
    m.forward_backward(tok.data(), tgt.data(), 1.f / T);  // warm-up: first touch of every buffer
    const auto t0 = std::chrono::steady_clock::now();
    m.forward_backward(tok.data(), tgt.data(), 1.f / T);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    Result r{T / s, ru.ru_maxrss / 1024.0};
    if (write(fd[1], &r, sizeof r) != sizeof r) std::_Exit(1);
    std::_Exit(0);
  }
  close(fd[1]);
  Result r{};
  if (read(fd[0], &r, sizeof r) != sizeof r) std::fprintf(stderr, "child for T=%d failed\n", T);
  close(fd[0]);
  waitpid(pid, nullptr, 0);
  return r;
}

void part2() {
  // configs/diff-3b-extend-64k.yaml's model; bf16 weights and activations,
  // fp32 master weights and Adam moments sharded by ZeRO-1 over dp·cp, fp32 gradients.
  const double D = 3072, L = 28, Fh = 8192, V = 100288, T = 65536, H = 12, d = 128;
  double P = 0;
  dt::ModelConfig m;
  m.vocab_size = int64_t(V), m.d_model = int(D), m.n_layers = int(L), m.n_heads = int(H), m.n_kv_heads = int(H);
  m.ffn_hidden = int(Fh);
  for (const dt::ParamSpec& p : dt::param_registry(m)) P += double(p.numel());
  std::printf("\n3B DIFF model (%.3g parameters) at T = 65536, micro-batch 1, recompute: attention, ZeRO-1 over dp*cp:\n",
              P);
  std::printf("%4s %4s %4s %5s | %8s %8s %8s %8s %8s | %8s\n", "tp", "cp", "pp", "dp", "weights", "grads", "optim",
              "acts", "attn", "GiB/GPU");
  struct Layout {
    int tp, cp, pp, dp;
  };
  for (Layout l : {Layout{1, 8, 1, 8}, Layout{2, 8, 1, 4}, Layout{2, 4, 1, 8}, Layout{4, 4, 1, 4}, Layout{8, 2, 1, 4},
                   Layout{8, 8, 1, 1}}) {
    const double shard = P / (l.tp * l.pp);
    const double weights = shard * 2;                       // bf16 copy used by the kernels
    const double grads = shard * 4;                         // fp32 gradient buffer
    const double optim = shard * 12 / (l.dp * l.cp);        // fp32 master + Adam m, v
    const double tokens = T / l.cp;                         // per rank per micro-batch
    const double layers = L / l.pp;
    // Kept per layer and token (bf16): x, xm, ln2 (D each), h1, h3, act (Fh/tp each).
    const double acts = layers * tokens * 2 * (3 * D + 3 * Fh / l.tp);
    // One layer's recomputed attention working set: ln1, q, k, v, o1, o2, att, and the
    // ring's K/V in flight (2 blocks), all O(T/cp): no T×T term.
    const double attn = tokens * 2 * (D + (D + 2 * D) / l.tp + 3 * D / l.tp + 4 * (2 * D / l.tp)) +
                        tokens * 4 * 3 * H / l.tp;  // lse1, lse2, rstd in fp32
    const double total = weights + grads + optim + acts + attn;
    auto gib = [](double b) { return b / (1024.0 * 1024 * 1024); };
    std::printf("%4d %4d %4d %5d | %8.1f %8.1f %8.1f %8.1f %8.2f | %8.1f\n", l.tp, l.cp, l.pp, l.dp, gib(weights),
                gib(grads), gib(optim), gib(acts), gib(attn), gib(total));
  }
  std::printf("(head_dim %g; excludes NCCL buffers, workspace and allocator slack, typically 2-4 GiB)\n", d);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> lengths = {2048, 8192, 32768, 65536};
  dt::Recompute rc = dt::Recompute::Attention;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help") {
      std::puts("usage: bench_long_context [--lengths 2048,8192,...] [--recompute none|attention|full]");
      return 0;
    } else if (a == "--lengths" && i + 1 < argc) {
      lengths.clear();
      std::stringstream ss(argv[++i]);
      for (std::string t; std::getline(ss, t, ',');) lengths.push_back(std::stoi(t));
    } else if (a == "--recompute" && i + 1 < argc) {
      const std::string v = argv[++i];
      rc = v == "none" ? dt::Recompute::None : v == "full" ? dt::Recompute::Full : dt::Recompute::Attention;
    }
  }
  std::printf("tiny DIFF model (D 64, 2 layers, 2 heads), one training step per length, fresh process each:\n");
  std::printf("%8s | %10s | %12s | %14s\n", "T", "tokens/s", "peak RSS MB", "KB per token");
  for (int T : lengths) {
    const Result r = run_child(T, rc);
    std::printf("%8d | %10.0f | %12.1f | %14.2f\n", T, r.tokens_per_s, r.peak_mb, r.peak_mb * 1024.0 / T);
    std::fflush(stdout);
  }
  part2();
  return 0;
}
