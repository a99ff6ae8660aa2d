// Throughput of the CUDA backend on one GPU.
//
//   bench_cuda [--device N] [--layers L] [--seq T] [--long-seq T] [--micro-batch B]
//              [--recompute none|attention|full] [--steps N] [--reps N] [--heads H]
//              [--no-attention] [--no-train] [--no-long]
//
// 1. peak: the MFU denominator (kernels/gemm_peak.hpp gpu_peak): the device's datasheet dense
//    bf16 peak (H100 SXM, H200, H100 PCIe, A100), else the measured cuBLASLt bf16 8192³
//    GEMM rate labelled as measured; DIFFTRON_PEAK_TFLOPS overrides. The measured GEMM
//    rate is printed beside it, and the step's MFU is given against both.
// 2. attention kernels at T 4096 (--seq), head size 128, batch 1, 2, 4, and at T 65536
//    (--long-seq), batch 1: standard attention with 2H heads of d against differential
//    attention with H heads of two maps each and values of 2d, the same Wq/Wk/Wv/Wo
//    shapes (DESIGN §2). FLOPs count QKᵀ and P·V, halved for the causal mask; a
//    backward counts 2.5× its forward.
// 3. a training step of the 3B shapes (configs/diff-3b.yaml, configs/transformer-3b.yaml)
//    with n_layers cut to what fits one GPU: forward_backward, AdamW over every
//    parameter, zero_grads, sync_compute_weights. Tokens/s, achieved TFLOP/s (the
//    model FLOPs of model/registry.hpp; recomputation is not counted) and MFU; then a
//    DIFF step at --long-seq with attention recompute: tokens/s and device memory.
// 4. issue 16's targets, each beside its figure ("not run: no GPU" without one).
//
// A short run (launch/gpu_check.sh): --layers 2 --steps 3 --reps 3.
//
// Timings use CUDA events around several repetitions after a warm-up. Without a GPU
// (or without CUDA) it says so and measures nothing.
//
// Design note: the attention kernels (kernels/cuda/flash_attention_*.cu), all on
// mma.sync.m16n8k16 bf16 fragments with ldmatrix and cp.async (kernels/cuda/ptx.cuh),
// 8 warps (256 threads) per block, rows padded by 16 bytes against ldmatrix bank
// conflicts. Tiles and shared memory per block (D = head size, maps 1 standard / 2 diff):
//   forward  <D,maps>: 16 query rows per warp; 128 query rows (maps 1) or 64 rows of both
//                      maps (maps 2) per block; 64-key tiles, Q, K, V single-buffered with
//                      V(t) loading during QKᵀ and K(t+1) during PV; Q fragments held in
//                      registers when 2·d ≤ 128. <64,1> 36 KB, <128,1> 68 KB, <64,2> 53 KB,
//                      <128,2> 101 KB; the differential combine (λ, RMSNorm, g_sub,
//                      (1 − λ_init)) in the epilogue: one launch.
//   dK/dV    <D,maps>: 16 keys per warp, 128 keys (maps 1) or 64 keys × 2 maps per block;
//                      query steps of 64 rows (d 64) or 32 (d 128), double-buffered.
//                      <64,1> 73 KB, <128,1> 102.5 KB, <64,2> 141 KB, <128,2> 153 KB.
//   dQ       <D,maps>: as the forward's rows; 64-key tiles (32 for <128,2>), K/V
//                      double-buffered. <64,1> 72 KB, <128,1> 136 KB, <64,2> 105 KB,
//                      <128,2> 134 KB.
// ptxas -v (CUDA 13, sm_90; sm_80 within ±8), registers per thread, no spills anywhere:
//   forward <64,1> 158, <128,1> 222, <64,2> 222, <128,2> 255 (with the combine: the same);
//   dK/dV   <64,1> 239, <128,1> 248, <64,2> 244, <128,2> 236;
//   dQ      <64,1> 196, <128,1> 244, <64,2> 217, <128,2> 213;  delta 40.
// Occupancy: above 128 registers a 256-thread block takes more than half of an SM's
// 64K registers, so every attention kernel runs one block (8 warps, 12.5% of the
// warp slots) per SM on sm_80/sm_90; latency is hidden by the cp.async overlap and
// the independent mma chains of each warp rather than by more warps, as in
// FlashAttention-2. Not yet measured on a GPU (no device lent so far).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "cli/cli_args.hpp"

#ifdef DIFFTRON_HAVE_CUDA
#include <cuda_runtime.h>

#include <random>

#include "kernels/ops.hpp"
#include "kernels/gemm_peak.hpp"
#include "core/config.hpp"
#include "model/registry.hpp"
#include "model/transformer.hpp"
#endif

namespace {

struct Options {
  int device = 0, layers = 8, seq = 4096, long_seq = 65536, micro_batch = 1, steps = 5, reps = 10, heads = 16;
  std::string recompute;  // empty: the config's
  std::string diff_config = "configs/diff-3b.yaml", standard_config = "configs/transformer-3b.yaml";
  bool attention = true, train = true, long_context = true;
};

const char* kUsage =
    "usage: bench_cuda [--device N] [--layers L] [--seq T] [--long-seq T] [--micro-batch B]\n"
    "                  [--recompute none|attention|full] [--steps N] [--reps N] [--heads H]\n"
    "                  [--diff-config F] [--standard-config F] [--no-attention] [--no-train] [--no-long]\n"
    "Measures on one GPU: the MFU peak (datasheet dense bf16 by device name, else the measured\n"
    "cuBLASLt bf16 GEMM; DIFFTRON_PEAK_TFLOPS overrides) and the measured GEMM rate beside it;\n"
    "attention kernels (T = --seq, d 128, batch 1, 2, 4; standard 2H heads vs diff H heads of two\n"
    "maps, --heads H, default 16); a training step of the 3B configs with --layers layers\n"
    "(default 8), --seq tokens (default 4096) and --micro-batch sequences (default 1), timed over\n"
    "--steps steps (default 5) after one warm-up; the long-context figures at --long-seq tokens\n"
    "(default 65536: attention kernels at batch 1, and a DIFF step with attention recompute, its\n"
    "tokens/s and device memory; --no-long skips them). Ends with every issue-16 target beside\n"
    "its figure (\"not run: no GPU\" without one).\n"
    "A short run (launch/gpu_check.sh): --layers 2 --steps 3 --reps 3.";

Options parse(int argc, char** argv) {
  Options o;
  const struct {
    const char* name;
    int* value;
    int min;
  } counts[] = {{"--device", &o.device, 0}, {"--layers", &o.layers, 1},
                {"--seq", &o.seq, 2},       {"--long-seq", &o.long_seq, 2},
                {"--micro-batch", &o.micro_batch, 1},
                {"--steps", &o.steps, 1},   {"--reps", &o.reps, 1},
                {"--heads", &o.heads, 1}};
  const std::pair<const char*, std::string*> texts[] = {
      {"--recompute", &o.recompute}, {"--diff-config", &o.diff_config}, {"--standard-config", &o.standard_config}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-attention" || a == "--no-train" || a == "--no-long") {
      (a == "--no-attention" ? o.attention : a == "--no-train" ? o.train : o.long_context) = false;
      continue;
    }
    if (i + 1 >= argc) dt::fail(a, ": unknown option or missing value (see --help)");
    const std::string v = argv[++i];
    bool known = false;
    for (const auto& c : counts)
      if (a == c.name)
        *c.value = dt::parse_option<int>(a, v, c.min, INT_MAX, "an integer >= " + std::to_string(c.min)), known = true;
    for (const auto& [name, value] : texts)
      if (a == name) *value = v, known = true;
    if (!known) dt::fail("unknown option ", a, " (see --help)");
  }
  return o;
}

// Issue 16's targets, printed at the end beside the figures measured (on an
// H100 or H200, bf16, causal, d 128). A figure not measured says why.
struct Target {
  std::string figure, unit, goal;
  bool at_least;  // the figure must be >= bound (else <=)
  double bound;
  double value = 0;
  bool measured = false;
};
std::vector<Target> issue16_targets(const Options& o) {
  const std::string T = std::to_string(o.seq), L = std::to_string(o.long_seq);
  return {
      {"standard attention forward, T " + T + ", batch 4", "TFLOP/s", ">= 300", true, 300},
      {"standard attention backward, T " + T + ", batch 4", "TFLOP/s", ">= 200", true, 200},
      {"diff/standard attention fwd+bwd time, T " + T + ", batch 4", "x", "<= 1.15", false, 1.15},
      {"DIFF step MFU (diff-3b shapes, T " + T + ")", "%", ">= 45", true, 45},
      {"standard step MFU (transformer-3b shapes, T " + T + ")", "%", ">= 45", true, 45},
      {"DIFF/standard step time per token", "x", "<= 1.05", false, 1.05},
      {"diff attention fwd+bwd TFLOP/s at T " + L + " / at T " + T + " (batch 1)", "x", ">= 0.90", true, 0.90},
  };
}
void record(std::vector<Target>& targets, size_t i, double value) {
  targets[i].value = value;
  targets[i].measured = true;
}
void print_targets(const std::vector<Target>& targets, const char* not_run) {
  std::printf("\ntargets (issue 16):\n");
  for (const Target& t : targets) {
    if (!t.measured) {
      std::printf("target: %-62s %-22s (target %s %s)\n", t.figure.c_str(), not_run, t.goal.c_str(), t.unit.c_str());
      continue;
    }
    const bool met = t.at_least ? t.value >= t.bound : t.value <= t.bound;
    std::printf("target: %-62s %10.2f %-11s (target %s %s) %s\n", t.figure.c_str(), t.value, t.unit.c_str(),
                t.goal.c_str(), t.unit.c_str(), met ? "met" : "NOT met");
  }
}

#ifdef DIFFTRON_HAVE_CUDA
using dt::DType;
using dt::Tensor;

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) dt::fail(what, ": CUDA error: ", cudaGetErrorString(e));
}

// Device memory for one tensor, freed at scope exit.
struct DeviceTensor {
  Tensor t;
  DeviceTensor(int dev, DType dtype, std::initializer_list<int64_t> dims)
      : t(nullptr, dtype, dims, dt::Device::cuda(dev)) {
    t.ptr = dt::device_alloc(t.device, t.bytes());
  }
  ~DeviceTensor() { dt::device_free(t.device, t.ptr); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  operator Tensor() const { return t; }
};

// Fills a float tensor with N(0, sd) values: one random host block, tiled.
void fill_random(const Tensor& t, float sd, uint32_t seed) {
  const int64_t block = std::min<int64_t>(t.numel(), 1 << 20);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, sd);
  std::vector<float> host(static_cast<size_t>(block));
  for (float& x : host) x = normal(rng);
  DeviceTensor staging(t.device.index, DType::F32, {block});
  dt::ops::copy(staging, Tensor(host.data(), DType::F32, {block}));
  const size_t esz = dt::dtype_size(t.dtype);
  for (int64_t off = 0; off < t.numel(); off += block) {
    const int64_t n = std::min(block, t.numel() - off);
    Tensor dst(static_cast<char*>(t.ptr) + size_t(off) * esz, t.dtype, {n}, t.device);
    dt::ops::copy(dst, Tensor(staging.t.ptr, DType::F32, {n}, t.device));  // converts to bf16 where needed
  }
}

// Milliseconds per call of f on the compute stream (the legacy default stream),
// after `warmup` untimed calls.
template <class F>
double time_ms(int warmup, int reps, F&& f) {
  for (int i = 0; i < warmup; ++i) f();
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  cuda_check(cudaEventRecord(start, 0), "cudaEventRecord");
  for (int i = 0; i < reps; ++i) f();
  cuda_check(cudaEventRecord(stop, 0), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return double(ms) / reps;
}

struct FwdBwd {
  double fwd_ms, bwd_ms;
};

// Standard causal attention: B sequences of T, Hs heads of d.
FwdBwd time_standard(const Options& o, int64_t B, int64_t T, int64_t Hs, int64_t d) {
  const int dev = o.device;
  DeviceTensor q(dev, DType::BF16, {B, T, Hs, d}), k(dev, DType::BF16, {B, T, Hs, d}),
      v(dev, DType::BF16, {B, T, Hs, d}), out(dev, DType::BF16, {B, T, Hs, d}), lse(dev, DType::F32, {B, Hs, T}),
      dout(dev, DType::BF16, {B, T, Hs, d}), dq(dev, DType::BF16, {B, T, Hs, d}), dk(dev, DType::BF16, {B, T, Hs, d}),
      dv(dev, DType::BF16, {B, T, Hs, d});
  fill_random(q, 1.f, 1), fill_random(k, 1.f, 2), fill_random(v, 1.f, 3), fill_random(dout, 1.f, 4);
  FwdBwd r;
  r.fwd_ms = time_ms(2, o.reps, [&] { dt::ops::attention_forward(out, lse, q, k, v); });
  r.bwd_ms = time_ms(2, o.reps, [&] { dt::ops::attention_backward(dq, dk, dv, dout, q, k, v, out, lse); });
  return r;
}

// Differential attention: H heads, each two maps of d sharing values of 2d (KV = H).
FwdBwd time_diff(const Options& o, int64_t B, int64_t T, int64_t H, int64_t d) {
  const int dev = o.device;
  const int64_t w = 2 * d;
  DeviceTensor q(dev, DType::BF16, {B, T, 2 * H, d}), k(dev, DType::BF16, {B, T, 2 * H, d}),
      v(dev, DType::BF16, {B, T, H, w}), out(dev, DType::BF16, {B, T, H, w}), o1(dev, DType::BF16, {B, T, H, w}),
      o2(dev, DType::BF16, {B, T, H, w}), lse1(dev, DType::F32, {B, H, T}), lse2(dev, DType::F32, {B, H, T}),
      rstd(dev, DType::F32, {B, T, H}), dout(dev, DType::BF16, {B, T, H, w}), dq(dev, DType::BF16, {B, T, 2 * H, d}),
      dk(dev, DType::BF16, {B, T, 2 * H, d}), dv(dev, DType::BF16, {B, T, H, w}), g_sub(dev, DType::F32, {w}),
      dg_sub(dev, DType::F32, {w}), lam(dev, DType::F32, {4, d}), dlam(dev, DType::F32, {4, d});
  fill_random(q, 1.f, 1), fill_random(k, 1.f, 2), fill_random(v, 1.f, 3), fill_random(dout, 1.f, 4);
  fill_random(lam, 0.1f, 5), fill_random(g_sub, 1.f, 6);
  dt::ops::fill_zero(dlam), dt::ops::fill_zero(dg_sub);
  const Tensor L = lam, dL = dlam;
  const dt::ops::DiffLambda lambda{L.slice0(0, 1).view({d}), L.slice0(1, 2).view({d}), L.slice0(2, 3).view({d}),
                                   L.slice0(3, 4).view({d}), 0.2f};
  const dt::ops::DiffLambdaGrads dlambda{dL.slice0(0, 1).view({d}), dL.slice0(1, 2).view({d}),
                                         dL.slice0(2, 3).view({d}), dL.slice0(3, 4).view({d})};
  const dt::ops::DiffAttnCache cache{o1, o2, lse1, lse2, rstd};
  const float eps = 1e-5f;
  FwdBwd r;
  r.fwd_ms = time_ms(2, o.reps, [&] { dt::ops::diff_attention_forward(out, cache, q, k, v, lambda, g_sub, eps); });
  r.bwd_ms = time_ms(2, o.reps, [&] {
    dt::ops::diff_attention_backward(dq, dk, dv, dlambda, dg_sub, dout, q, k, v, lambda, g_sub, cache, eps);
  });
  return r;
}

// One attention row: standard 2H heads of d against diff H heads of two maps
// (values 2d), the same Wq/Wk/Wv/Wo shapes (DESIGN §2). Causal FLOPs: QKᵀ and
// P·V halved; a backward counts 2.5× its forward. The diff kernels do 1.5× the
// standard's FLOPs here (P·V over values of 2d).
struct AttnRow {
  FwdBwd standard, diff;
  double std_fwd_flops, diff_fwd_flops;
  double std_tflops(bool bwd) const {
    return (bwd ? 2.5 : 1.0) * std_fwd_flops / (bwd ? standard.bwd_ms : standard.fwd_ms) / 1e9;
  }
  double diff_total_tflops() const { return 3.5 * diff_fwd_flops / (diff.fwd_ms + diff.bwd_ms) / 1e9; }
};

AttnRow attention_row(const Options& o, int64_t B, int64_t T) {
  const int64_t d = 128, H = o.heads;
  const double TT = double(T) * double(T);
  AttnRow r;
  r.std_fwd_flops = 4.0 * B * (2 * H) * TT * d / 2;
  r.diff_fwd_flops = (2.0 * (2.0 * B * H * TT * d) + 2.0 * (2.0 * B * H * TT * 2 * d)) / 2;
  r.standard = time_standard(o, B, T, 2 * H, d);
  r.diff = time_diff(o, B, T, H, d);
  auto line = [&](const char* kind, const FwdBwd& t, double fwd_flops) {
    std::printf("%6lld %-9s %9.3f %12.1f %9.3f %12.1f\n", (long long)B, kind, t.fwd_ms, fwd_flops / t.fwd_ms / 1e9,
                t.bwd_ms, 2.5 * fwd_flops / t.bwd_ms / 1e9);
  };
  line("standard", r.standard, r.std_fwd_flops);
  line("diff", r.diff, r.diff_fwd_flops);
  std::printf("%6lld diff/standard time: forward %.2fx, backward %.2fx, fwd+bwd %.2fx (FLOPs 1.50x)\n",
              (long long)B, r.diff.fwd_ms / r.standard.fwd_ms, r.diff.bwd_ms / r.standard.bwd_ms,
              (r.diff.fwd_ms + r.diff.bwd_ms) / (r.standard.fwd_ms + r.standard.bwd_ms));
  return r;
}

void bench_attention(const Options& o, std::vector<Target>& targets) {
  auto header = [&](int64_t T) {
    std::printf(
        "\nattention kernels, T %lld, d 128: standard %lld heads of d vs diff %lld heads x 2 maps "
        "(values 2d); causal FLOPs, backward = 2.5x forward\n",
        (long long)T, (long long)(2 * o.heads), (long long)o.heads);
    std::printf("%6s %-9s %9s %12s %9s %12s\n", "batch", "kind", "fwd ms", "fwd TFLOP/s", "bwd ms", "bwd TFLOP/s");
  };
  header(o.seq);
  double diff_short_b1 = 0;
  for (int64_t B : {1, 2, 4}) {
    const AttnRow r = attention_row(o, B, o.seq);
    if (B == 1) diff_short_b1 = r.diff_total_tflops();
    if (B == 4) {
      record(targets, 0, r.std_tflops(false));
      record(targets, 1, r.std_tflops(true));
      record(targets, 2, (r.diff.fwd_ms + r.diff.bwd_ms) / (r.standard.fwd_ms + r.standard.bwd_ms));
    }
  }
  if (!o.long_context) return;
  header(o.long_seq);
  const AttnRow r = attention_row(o, 1, o.long_seq);
  record(targets, 6, r.diff_total_tflops() / diff_short_b1);
}

struct StepResult {
  double step_s, tokens_per_s, tflops, loss, mem_gib;  // mem_gib: device memory in use after the steps
};

// forward_backward + AdamW over the whole parameter arena (decay on every element: the
// same cost as decaying matrices only) + zero_grads + the bf16 compute-weight refresh.
StepResult bench_step(const Options& o, const std::string& path, int T, const std::string& recompute, int steps) {
  std::vector<std::string> sets = {"model.n_layers=" + std::to_string(o.layers), "train.seq_len=" + std::to_string(T)};
  if (!recompute.empty()) sets.push_back("model.recompute=" + recompute);
  const dt::Config cfg = dt::load_config_file(path, sets);
  const int B = o.micro_batch;
  dt::Transformer model(cfg.model, B, T, dt::ModelParallel{}, 1, dt::Device::cuda(o.device));
  model.init_weights(cfg.train.seed);
  const Tensor P = model.flat_params(), G = model.flat_grads();
  DeviceTensor m(o.device, DType::F32, {P.numel()}), v(o.device, DType::F32, {P.numel()});
  dt::ops::fill_zero(m), dt::ops::fill_zero(v);
  std::mt19937 rng(7);
  std::vector<int32_t> tokens(size_t(B) * T), targets(size_t(B) * T);
  for (auto& t : tokens) t = int32_t(rng() % uint32_t(cfg.model.vocab_size));
  for (auto& t : targets) t = int32_t(rng() % uint32_t(cfg.model.vocab_size));
  dt::ops::AdamWParams hp{.lr = float(cfg.train.lr),
                          .beta1 = float(cfg.train.beta1),
                          .beta2 = float(cfg.train.beta2),
                          .eps = float(cfg.train.adam_eps),
                          .weight_decay = float(cfg.train.weight_decay),
                          .step = 0,
                          .grad_scale = 1.f};
  double loss = 0;
  auto step = [&] {
    loss = model.forward_backward(tokens.data(), targets.data(), 1.f / float(B * T));
    ++hp.step;
    dt::ops::adamw(P, G, m, v, hp);
    model.zero_grads();
    model.sync_compute_weights();
  };
  const double ms = time_ms(1, steps, step);
  size_t free_b = 0, total_b = 0;
  cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  StepResult r;
  r.mem_gib = double(total_b - free_b) / double(1ull << 30);
  r.step_s = ms / 1e3;
  r.tokens_per_s = double(B) * T / r.step_s;
  r.tflops = r.tokens_per_s * dt::train_flops_per_token(cfg.model, T) / 1e12;
  r.loss = loss / (double(B) * T);
  return r;
}

void bench_train(const Options& o, const dt::GpuPeak& peak, std::vector<Target>& targets) {
  std::printf("\ntraining step, 3B shapes with %d layers, seq %d, micro-batch %d, recompute %s, %d timed steps\n",
              o.layers, o.seq, o.micro_batch, o.recompute.empty() ? "(from config)" : o.recompute.c_str(), o.steps);
  const StepResult d = bench_step(o, o.diff_config, o.seq, o.recompute, o.steps);
  const StepResult s = bench_step(o, o.standard_config, o.seq, o.recompute, o.steps);
  for (auto [name, path, r] : {std::tuple{"diff", &o.diff_config, d}, std::tuple{"standard", &o.standard_config, s}})
    std::printf(
        "%-9s %-30s step %.3f s  tokens/s %.0f  achieved %.1f TFLOP/s  MFU %.1f%% (target >= 45%%)  "
        "of measured GEMM %.1f%%  loss %.3f\n",
        name, path->c_str(), r.step_s, r.tokens_per_s, r.tflops, 100.0 * r.tflops / peak.tflops,
        peak.measured_gemm_tflops > 0 ? 100.0 * r.tflops / peak.measured_gemm_tflops : 0.0, r.loss);
  std::printf("diff/standard step time per token: %.3fx (target <= 1.05x)\n", d.step_s / s.step_s);
  record(targets, 3, 100.0 * d.tflops / peak.tflops);
  record(targets, 4, 100.0 * s.tflops / peak.tflops);
  record(targets, 5, d.step_s / s.step_s);
  if (!o.long_context) return;
  // T 64K: attention recomputed in the backward (the context-extension stage's setting).
  const int steps = std::min(o.steps, 2);
  std::printf("\nlong context: DIFF step, %d layers, seq %d, micro-batch %d, recompute attention, %d timed steps\n",
              o.layers, o.long_seq, o.micro_batch, steps);
  try {
    const StepResult l = bench_step(o, o.diff_config, o.long_seq, "attention", steps);
    std::printf("diff      seq %d  step %.3f s  tokens/s %.0f  achieved %.1f TFLOP/s  MFU %.1f%%  device memory %.1f GiB\n",
                o.long_seq, l.step_s, l.tokens_per_s, l.tflops, 100.0 * l.tflops / peak.tflops, l.mem_gib);
  } catch (const dt::Error& e) {
    std::printf("diff      seq %d  failed: %s\n", o.long_seq, e.what());
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help") {
      std::puts(kUsage);
      return 0;
    }
  try {
    const Options o = parse(argc, argv);
    std::vector<Target> targets = issue16_targets(o);
#ifndef DIFFTRON_HAVE_CUDA
    std::puts("bench_cuda: built without CUDA (DIFFTRON_CUDA=OFF or no nvcc found); nothing measured");
    print_targets(targets, "not run: no GPU");
    return 0;
#else
    const int count = dt::cuda_device_count();
    if (count == 0) {
      std::puts("bench_cuda: no CUDA GPU visible (cudaGetDeviceCount failed or returned 0); nothing measured");
      print_targets(targets, "not run: no GPU");
      return 0;
    }
    if (o.device >= count) dt::fail("--device ", o.device, ": only ", count, " CUDA device(s) visible");
    cuda_check(cudaSetDevice(o.device), "cudaSetDevice");
    const dt::GpuPeak peak = dt::gpu_peak(o.device, 8192);
    std::printf("device %d: %s\npeak: %s (the MFU denominator)\n", o.device, peak.device_name.c_str(),
                peak.describe().c_str());
    if (peak.measured_gemm_tflops > 0)
      std::printf("measured GEMM: cuBLASLt bf16 8192^3 = %.1f TFLOP/s\n", peak.measured_gemm_tflops);
    if (o.attention) bench_attention(o, targets);
    if (o.train) bench_train(o, peak, targets);
    print_targets(targets, "not run (option)");
    return 0;
#endif
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "bench_cuda: error: %s\n", e.what());
    return 1;
  }
}
