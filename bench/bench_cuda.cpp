// Throughput of the CUDA backend on one GPU.
//
//   bench_cuda [--device N] [--layers L] [--seq T] [--micro-batch B] [--recompute none|attention|full]
//              [--steps N] [--reps N] [--heads H] [--no-attention] [--no-train]
//
// 1. peak: the MFU denominator (kernels/gemm_peak.hpp gpu_peak): the device's datasheet dense
//    bf16 peak (H100 SXM, H200, H100 PCIe, A100), else the measured cuBLASLt bf16 8192³
//    GEMM rate labelled as measured; DIFFTRON_PEAK_TFLOPS overrides. The measured GEMM
//    rate is printed beside it, and the step's MFU is given against both.
// 2. attention kernels at T 4096 (--seq), head size 128, batch 1, 2, 4: standard
//    attention with 2H heads of d against differential attention with H heads of
//    two maps each and values of 2d, the same Wq/Wk/Wv/Wo shapes (DESIGN §2). FLOPs
//    count QKᵀ and P·V, halved for the causal mask; a backward counts 2.5× its forward.
// 3. a training step of the 3B shapes (configs/diff-3b.yaml, configs/transformer-3b.yaml)
//    with n_layers cut to what fits one GPU: forward_backward, AdamW over every
//    parameter, zero_grads, sync_compute_weights. Tokens/s, achieved TFLOP/s (the
//    model FLOPs of model/registry.hpp; recomputation is not counted) and MFU.
//
// A short run (launch/gpu_check.sh): --layers 2 --steps 3 --reps 3.
//
// Timings use CUDA events around several repetitions after a warm-up. Without a GPU
// (or without CUDA) it says so and measures nothing.
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
  int device = 0, layers = 8, seq = 4096, micro_batch = 1, steps = 5, reps = 10, heads = 16;
  std::string recompute;  // empty: the config's
  std::string diff_config = "configs/diff-3b.yaml", standard_config = "configs/transformer-3b.yaml";
  bool attention = true, train = true;
};

const char* kUsage =
    "usage: bench_cuda [--device N] [--layers L] [--seq T] [--micro-batch B] [--recompute none|attention|full]\n"
    "                  [--steps N] [--reps N] [--heads H] [--diff-config F] [--standard-config F]\n"
    "                  [--no-attention] [--no-train]\n"
    "Measures on one GPU: the MFU peak (datasheet dense bf16 by device name, else the measured\n"
    "cuBLASLt bf16 GEMM; DIFFTRON_PEAK_TFLOPS overrides) and the measured GEMM rate beside it;\n"
    "attention kernels (T = --seq, d 128, batch 1, 2, 4; standard 2H heads vs diff H heads of two\n"
    "maps, --heads H, default 16); a training step of the 3B configs with --layers layers\n"
    "(default 8), --seq tokens (default 4096) and --micro-batch sequences (default 1), timed over\n"
    "--steps steps (default 5) after one warm-up.\n"
    "A short run (launch/gpu_check.sh): --layers 2 --steps 3 --reps 3.";

Options parse(int argc, char** argv) {
  Options o;
  const struct {
    const char* name;
    int* value;
    int min;
  } counts[] = {{"--device", &o.device, 0}, {"--layers", &o.layers, 1},
                {"--seq", &o.seq, 2},       {"--micro-batch", &o.micro_batch, 1},
                {"--steps", &o.steps, 1},   {"--reps", &o.reps, 1},
                {"--heads", &o.heads, 1}};
  const std::pair<const char*, std::string*> texts[] = {
      {"--recompute", &o.recompute}, {"--diff-config", &o.diff_config}, {"--standard-config", &o.standard_config}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-attention" || a == "--no-train") {
      (a == "--no-attention" ? o.attention : o.train) = false;
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

void bench_attention(const Options& o) {
  const int64_t T = o.seq, d = 128, H = o.heads;
  std::printf(
      "\nattention kernels, T %lld, d %lld: standard %lld heads of d vs diff %lld heads x 2 maps "
      "(values 2d); causal FLOPs, backward = 2.5x forward\n",
      (long long)T, (long long)d, (long long)(2 * H), (long long)H);
  std::printf("%6s %-9s %9s %12s %9s %12s\n", "batch", "kind", "fwd ms", "fwd TFLOP/s", "bwd ms", "bwd TFLOP/s");
  for (int64_t B : {1, 2, 4}) {
    const double TT = double(T) * double(T);
    const double std_fwd = 4.0 * B * (2 * H) * TT * d / 2;
    const double diff_fwd = (2.0 * (2.0 * B * H * TT * d) + 2.0 * (2.0 * B * H * TT * 2 * d)) / 2;
    const FwdBwd s = time_standard(o, B, T, 2 * H, d), df = time_diff(o, B, T, H, d);
    auto row = [&](const char* kind, const FwdBwd& t, double fwd_flops) {
      std::printf("%6lld %-9s %9.3f %12.1f %9.3f %12.1f\n", (long long)B, kind, t.fwd_ms, fwd_flops / t.fwd_ms / 1e9,
                  t.bwd_ms, 2.5 * fwd_flops / t.bwd_ms / 1e9);
    };
    row("standard", s, std_fwd);
    row("diff", df, diff_fwd);
    std::printf("%6lld diff/standard time: forward %.2fx, backward %.2fx\n", (long long)B, df.fwd_ms / s.fwd_ms,
                df.bwd_ms / s.bwd_ms);
    // runtime.deterministic: false keeps fp32-atomic backwards only if this shows them faster.
    dt::ops::set_deterministic(false);
    const FwdBwd sa = time_standard(o, B, T, 2 * H, d), da = time_diff(o, B, T, H, d);
    dt::ops::set_deterministic(true);
    std::printf("%6lld atomic backward (runtime.deterministic: false): standard %.3f ms (%.2fx deterministic), "
                "diff %.3f ms (%.2fx)\n",
                (long long)B, sa.bwd_ms, sa.bwd_ms / s.bwd_ms, da.bwd_ms, da.bwd_ms / df.bwd_ms);
  }
}

struct StepResult {
  double step_s, tokens_per_s, tflops, loss;
};

// forward_backward + AdamW over the whole parameter arena (decay on every element: the
// same cost as decaying matrices only) + zero_grads + the bf16 compute-weight refresh.
StepResult bench_step(const Options& o, const std::string& path) {
  std::vector<std::string> sets = {"model.n_layers=" + std::to_string(o.layers),
                                   "train.seq_len=" + std::to_string(o.seq)};
  if (!o.recompute.empty()) sets.push_back("model.recompute=" + o.recompute);
  const dt::Config cfg = dt::load_config_file(path, sets);
  const int B = o.micro_batch, T = o.seq;
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
  const double ms = time_ms(1, o.steps, step);
  StepResult r;
  r.step_s = ms / 1e3;
  r.tokens_per_s = double(B) * T / r.step_s;
  r.tflops = r.tokens_per_s * dt::train_flops_per_token(cfg.model, T) / 1e12;
  r.loss = loss / (double(B) * T);
  return r;
}

void bench_train(const Options& o, const dt::GpuPeak& peak) {
  std::printf("\ntraining step, 3B shapes with %d layers, seq %d, micro-batch %d, recompute %s, %d timed steps\n",
              o.layers, o.seq, o.micro_batch, o.recompute.empty() ? "(from config)" : o.recompute.c_str(), o.steps);
  const StepResult d = bench_step(o, o.diff_config);
  const StepResult s = bench_step(o, o.standard_config);
  for (auto [name, path, r] : {std::tuple{"diff", &o.diff_config, d}, std::tuple{"standard", &o.standard_config, s}})
    std::printf(
        "%-9s %-30s step %.3f s  tokens/s %.0f  achieved %.1f TFLOP/s  MFU %.1f%% (target >= 45%%)  "
        "of measured GEMM %.1f%%  loss %.3f\n",
        name, path->c_str(), r.step_s, r.tokens_per_s, r.tflops, 100.0 * r.tflops / peak.tflops,
        peak.measured_gemm_tflops > 0 ? 100.0 * r.tflops / peak.measured_gemm_tflops : 0.0, r.loss);
  std::printf("diff/standard step time: %.3fx (target <= 1.10x, diff at most 10%% slower)\n", d.step_s / s.step_s);
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
#ifndef DIFFTRON_HAVE_CUDA
    (void)o;
    std::puts("bench_cuda: built without CUDA (DIFFTRON_CUDA=OFF or no nvcc found); nothing measured");
    return 0;
#else
    const int count = dt::cuda_device_count();
    if (count == 0) {
      std::puts("bench_cuda: no CUDA GPU visible (cudaGetDeviceCount failed or returned 0); nothing measured");
      return 0;
    }
    if (o.device >= count) dt::fail("--device ", o.device, ": only ", count, " CUDA device(s) visible");
    cuda_check(cudaSetDevice(o.device), "cudaSetDevice");
    const dt::GpuPeak peak = dt::gpu_peak(o.device, 8192);
    std::printf("device %d: %s\npeak: %s (the MFU denominator)\n", o.device, peak.device_name.c_str(),
                peak.describe().c_str());
    if (peak.measured_gemm_tflops > 0)
      std::printf("measured GEMM: cuBLASLt bf16 8192^3 = %.1f TFLOP/s\n", peak.measured_gemm_tflops);
    if (o.attention) bench_attention(o);
    if (o.train) bench_train(o, peak);
    return 0;
#endif
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "bench_cuda: error: %s\n", e.what());
    return 1;
  }
}
