// The CUDA backend against the CPU backend (DESIGN §3): GEMM, embedding, RMSNorm,
// RoPE, SwiGLU, both cross-entropies, AdamW, reductions and copies, the errors a
// misplaced or mistyped tensor raises. Attention kernels are in
// test_cuda_attention.cpp, whole training steps in test_cuda_training_step.cpp.
// Every test skips without a GPU.
//
// Inputs are drawn in fp32 and rounded to bf16 where the CUDA op reads bf16; the
// CPU op runs on the same rounded values, so each comparison measures only the
// CUDA op's error. Device outputs are poisoned (NaN) before each run; "+=" outputs
// start from the same random values on both sides.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/gemm_peak.hpp"
#include "tests/unit/test_util.hpp"

namespace {

using namespace dt;
using namespace dt_test;
using reftest::randn;
constexpr DType F32 = DType::F32, BF16 = DType::BF16, I32 = DType::I32;


std::string tag(const std::string& what, DType t) { return what + " (" + dtype_name(t) + ")"; }

// ---- GEMM ---------------------------------------------------------------------------
// M, N, K are no multiple of any tile. bf16 out: one rounding after fp32 accumulation
// (elementwise, with atol 2e-3 of the scale for K = 130 terms near cancellation).
// bf16 inputs, f32 out: every product is exact in fp32 (8-bit significands); only the
// summation differs (order, and tensor cores may truncate rather than round while
// accumulating, ~K·2^-23 of the largest term): 3e-5 of the scale. f32 inputs: 2e-3 of
// the scale admits TF32 tensor-core products (2^-11 per operand over 130 random-sign
// terms) should the backend use them. A transpose, alpha or beta mistake is O(1).
TEST(CudaOps, MatmulMatchesCpuForEveryTransposeAndDtype) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  struct Mode {
    DType in, out;
    float alpha, beta;
    Tol tol;
  };
  const Mode modes[] = {
      {BF16, BF16, 1.f, 0.f, {2e-3, 2e-2}}, {BF16, F32, 0.5f, 1.f, {3e-5, 0}}, {F32, F32, 0.5f, 0.75f, {2e-3, 0}}};
  std::mt19937 rng(1001);
  const int64_t M = 67, N = 45, K = 130;
  for (const Mode& m : modes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
        auto A = rand_as(m.in, M * K, rng), B = rand_as(m.in, K * N, rng), C = rand_as(m.out, M * N, rng);
        GpuTensor gA(m.in, {ar, ac}, A), gB(m.in, {br, bc}, B), gC(m.out, {M, N}, C);
        if (m.beta == 0.f) gC.poison();  // beta = 0: C is write-only (BLAS convention)
        ops::matmul(cpu_f32(C.data(), {M, N}), cpu_f32(A.data(), {ar, ac}), ta, cpu_f32(B.data(), {br, bc}), tb,
                    m.alpha, m.beta);
        ops::matmul(gC, gA, ta, gB, tb, m.alpha, m.beta);
        const std::string what = std::string(dtype_name(m.in)) + "->" + dtype_name(m.out) + " beta " +
                                 std::to_string(m.beta) + " ta " + std::to_string(ta) + " tb " + std::to_string(tb);
        EXPECT_TRUE(close_to(gC.download(), C, m.tol, what));
      }
}

// dx (bf16) overwritten or accumulated, dW (f32 master gradient) accumulated.
// Tolerances as for the GEMMs above.
TEST(CudaOps, LinearBackwardOverwritesOrAccumulatesDxAndAccumulatesDw) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1002);
  const int64_t N = 70, in = 48, out = 96;
  for (bool acc : {false, true}) {
    auto dy = rand_as(BF16, N * out, rng), x = rand_as(BF16, N * in, rng), W = rand_as(BF16, out * in, rng);
    auto dx = rand_as(BF16, N * in, rng), dW = randn(size_t(out * in), rng);
    GpuTensor gdy(BF16, {N, out}, dy), gx(BF16, {N, in}, x), gW(BF16, {out, in}, W), gdx(BF16, {N, in}, dx),
        gdW(F32, {out, in}, dW);
    if (!acc) gdx.poison();
    ops::linear_backward(cpu_f32(dx.data(), {N, in}), cpu_f32(dW.data(), {out, in}), cpu_f32(dy.data(), {N, out}),
                         cpu_f32(x.data(), {N, in}), cpu_f32(W.data(), {out, in}), acc);
    ops::linear_backward(gdx, gdW, gdy, gx, gW, acc);
    const std::string what = acc ? " (accumulate_dx)" : " (overwrite dx)";
    EXPECT_TRUE(close_to(gdx.download(), dx, {2e-3, 2e-2}, "dx" + what));
    EXPECT_TRUE(close_to(gdW.download(), dW, {3e-5, 0}, "dW +=" + what));
  }
}

// out = base + x·Wᵀ in one GEMM (base read as cuBLASLt's C, out written as D), and
// with no base out = x·Wᵀ. out is poisoned first, so reading it instead of base (or
// not writing it) fails. bf16 out: tolerances as for the bf16 GEMMs above.
TEST(CudaOps, LinearResidualForwardAddsTheBaseInTheGemm) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1009);
  const int64_t N = 70, in = 48, out = 96;
  for (bool with_base : {true, false}) {
    auto x = rand_as(BF16, N * in, rng), W = rand_as(BF16, out * in, rng), base = rand_as(BF16, N * out, rng);
    std::vector<float> want(size_t(N * out), 0.f);
    GpuTensor gx(BF16, {N, in}, x), gW(BF16, {out, in}, W), gbase(BF16, {N, out}, base), gout(BF16, {N, out});
    gout.poison();
    ops::linear_residual_forward(cpu_f32(want.data(), {N, out}), with_base ? cpu_f32(base.data(), {N, out}) : Tensor(),
                                 cpu_f32(x.data(), {N, in}), cpu_f32(W.data(), {out, in}));
    ops::linear_residual_forward(gout, with_base ? Tensor(gbase) : Tensor(), gx, gW);
    EXPECT_TRUE(close_to(gout.download(), want, {2e-3, 2e-2}, with_base ? "base + x·Wᵀ" : "x·Wᵀ"));
    EXPECT_TRUE(close_to(gbase.download(), base, {0, 0}, "base unchanged"));
  }
}

// ---- embedding ------------------------------------------------------------------------
// Shard rows [v0, v0 + Vl) with v0 > 0; tokens below, inside and above the shard, some
// repeated; a shard of fewer rows than the backward's 256 row groups and one of more,
// with a width of one and of two 1024-column chunks. The forward is a copy (zeros for
// other shards' tokens): exact. The deterministic backward adds each row's dout rows in
// position order, as the CPU does: exact. With atomics (deterministic off) the order
// varies: 1e-6 of the scale.
TEST(CudaOps, EmbeddingShardForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1003);
  struct Shape {
    int64_t V, v0, Vl, D, N;
  };
  for (const Shape& s : {Shape{300, 100, 100, 96, 74}, Shape{700, 50, 600, 1100, 90}}) {
    const int64_t V = s.V, v0 = s.v0, Vl = s.Vl, D = s.D, N = s.N;
    std::vector<int32_t> tok(N);
    for (auto& t : tok) t = int32_t(40 + rng() % (V - 80));
    tok[3] = tok[9] = tok[50] = 150;
    GpuTensor gtok(I32, {N});
    gtok.upload_i32(tok);
    for (DType t : {BF16, F32}) {
      const std::string shape = " V=" + std::to_string(V) + " D=" + std::to_string(D);
      auto E = rand_as(t, Vl * D, rng);
      std::vector<float> out(size_t(N * D), 123.f);
      GpuTensor gE(t, {Vl, D}, E), gout(t, {N, D});
      gout.poison();
      ops::embedding_forward_shard(cpu_f32(out.data(), {N, D}), cpu_i32(tok.data(), {N}), cpu_f32(E.data(), {Vl, D}),
                                   v0, V);
      ops::embedding_forward_shard(gout, gtok, gE, v0, V);
      EXPECT_TRUE(near_all(gout.download(), out, 0, 0, tag("embedding out", t) + shape));

      auto dout = rand_as(t, N * D, rng), dE0 = randn(size_t(Vl * D), rng), dE = dE0;
      GpuTensor gdout(t, {N, D}, dout);
      ops::embedding_backward_shard(cpu_f32(dE.data(), {Vl, D}), cpu_i32(tok.data(), {N}),
                                    cpu_f32(dout.data(), {N, D}), v0);
      for (bool det : {true, false}) {
        GpuTensor gdE(F32, {Vl, D}, dE0);
        ops::set_deterministic(det);
        ops::embedding_backward_shard(gdE, gtok, gdout, v0);
        ops::set_deterministic(true);
        EXPECT_TRUE(close_to(gdE.download(), dE, {det ? 0.0 : 1e-6, 0},
                             tag(det ? "embedding dE += (deterministic)" : "embedding dE += (atomics)", t) + shape));
      }
    }
  }
}

// ---- RMSNorm --------------------------------------------------------------------------
// out, dx: elementwise(dtype); rstd and dg are f32 reductions over C or N rows of
// values exact on both sides: 1e-5. dx and dg accumulate into random values.
TEST(CudaOps, RmsNormForwardAndAccumulatingBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1004);
  const float eps = 1e-5f;
  for (auto [N, C] : {std::pair<int64_t, int64_t>{37, 100}, {5, 768}})
    for (DType t : {BF16, F32}) {
      const std::string sz = " N=" + std::to_string(N) + " C=" + std::to_string(C);
      auto x = rand_as(t, N * C, rng), g = randn(size_t(C), rng, 0.5, 1.0);
      std::vector<float> out(size_t(N * C), 123.f), rstd(size_t(N), 123.f);
      GpuTensor gx(t, {N, C}, x), gg(F32, {C}, g), gout(t, {N, C}), grstd(F32, {N});
      gout.poison();
      grstd.poison();
      ops::rmsnorm_forward(cpu_f32(out.data(), {N, C}), cpu_f32(rstd.data(), {N}), cpu_f32(x.data(), {N, C}),
                           cpu_f32(g.data(), {C}), eps);
      ops::rmsnorm_forward(gout, grstd, gx, gg, eps);
      EXPECT_TRUE(close_to(gout.download(), out, elementwise(t), tag("rmsnorm out" + sz, t)));
      EXPECT_TRUE(close_to(grstd.download(), rstd, {1e-5, 1e-5}, tag("rmsnorm rstd" + sz, t)));

      auto dout = rand_as(t, N * C, rng), dx = rand_as(t, N * C, rng), dg = randn(size_t(C), rng);
      GpuTensor gdout(t, {N, C}, dout), gdx(t, {N, C}, dx), gdg(F32, {C}, dg), grstd_in(F32, {N}, rstd);
      ops::rmsnorm_backward(cpu_f32(dx.data(), {N, C}), cpu_f32(dg.data(), {C}), cpu_f32(dout.data(), {N, C}),
                            cpu_f32(x.data(), {N, C}), cpu_f32(g.data(), {C}), cpu_f32(rstd.data(), {N}));
      ops::rmsnorm_backward(gdx, gdg, gdout, gx, gg, grstd_in);
      EXPECT_TRUE(close_to(gdx.download(), dx, elementwise(t), tag("rmsnorm dx +=" + sz, t)));
      EXPECT_TRUE(close_to(gdg.download(), dg, {1e-5, 1e-5}, tag("rmsnorm dg +=" + sz, t)));
    }
}

// ---- RoPE -----------------------------------------------------------------------------
// The table layout is one definition (kernels/ops.hpp) for both backends. Its values
// are cos/sin of double angles stored in fp32: 2e-6 absolute (values in [−1, 1]); at
// pos0 = 60000 an fp32 angle would be off by ~4e-3. The rotations use the same
// uploaded table and are elementwise(dtype).
TEST(CudaOps, RopeTableForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1005);
  const int64_t B = 2, T = 50, nh = 3, d = 128;
  for (double theta : {10000.0, 640000.0})
    for (int64_t pos0 : {int64_t(0), int64_t(60000)}) {
      const std::string what = " theta=" + std::to_string(theta) + " pos0=" + std::to_string(pos0);
      std::vector<float> table(size_t(T * d), 123.f);
      GpuTensor gtable(F32, {T, d});
      gtable.poison();
      ops::rope_table(cpu_f32(table.data(), {T, d}), theta, pos0);
      ops::rope_table(gtable, theta, pos0);
      EXPECT_TRUE(near_all(gtable.download(), table, 2e-6, 0, "rope_table" + what));

      GpuTensor gtab(F32, {T, d}, table);
      for (DType t : {BF16, F32})
        for (bool backward : {false, true}) {
          auto x = rand_as(t, B * T * nh * d, rng);
          GpuTensor gx(t, {B, T, nh, d}, x);
          Tensor hx = cpu_f32(x.data(), {B, T, nh, d}), ht = cpu_f32(table.data(), {T, d});
          if (backward) {
            ops::rope_backward(hx, ht);
            ops::rope_backward(gx, gtab);
          } else {
            ops::rope_forward(hx, ht);
            ops::rope_forward(gx, gtab);
          }
          EXPECT_TRUE(
              close_to(gx.download(), x, elementwise(t), tag(backward ? "rope_backward" : "rope_forward", t) + what));
        }
    }
}

// ---- SwiGLU ---------------------------------------------------------------------------
// Elementwise: out, da, db overwritten, elementwise(dtype). a ~ N(0, 3) reaches both
// saturated ends of the sigmoid.
TEST(CudaOps, SwiGluForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1006);
  const int64_t N = 37, F = 300;
  for (DType t : {BF16, F32}) {
    auto a = rand_as(t, N * F, rng, 3.0), b = rand_as(t, N * F, rng), dout = rand_as(t, N * F, rng);
    std::vector<float> out(size_t(N * F), 123.f), da(out), db(out);
    GpuTensor ga(t, {N, F}, a), gb(t, {N, F}, b), gdout(t, {N, F}, dout), gout(t, {N, F}), gda(t, {N, F}),
        gdb(t, {N, F});
    gout.poison();
    gda.poison();
    gdb.poison();
    ops::swiglu_forward(cpu_f32(out.data(), {N, F}), cpu_f32(a.data(), {N, F}), cpu_f32(b.data(), {N, F}));
    ops::swiglu_forward(gout, ga, gb);
    ops::swiglu_backward(cpu_f32(da.data(), {N, F}), cpu_f32(db.data(), {N, F}), cpu_f32(dout.data(), {N, F}),
                         cpu_f32(a.data(), {N, F}), cpu_f32(b.data(), {N, F}));
    ops::swiglu_backward(gda, gdb, gdout, ga, gb);
    EXPECT_TRUE(close_to(gout.download(), out, elementwise(t), tag("swiglu out", t)));
    EXPECT_TRUE(close_to(gda.download(), da, elementwise(t), tag("swiglu da", t)));
    EXPECT_TRUE(close_to(gdb.download(), db, elementwise(t), tag("swiglu db", t)));
  }
}

// DIFF V2's combine: an elementwise product and difference, and a dot product of
// d = 64 fp32 terms for dλ (warp-reduced on the GPU, sequential on the CPU).
TEST(CudaOps, DiffV2CombineForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1007);
  const int64_t N = 37, H = 3, d = 64;
  for (DType t : {BF16, F32}) {
    auto o = rand_as(t, N * 2 * H * d, rng), lam = rand_as(t, N * H, rng, 2.0), dout = rand_as(t, N * H * d, rng);
    std::vector<float> out(size_t(N * H * d), 123.f), d_o(size_t(N * 2 * H * d), 123.f), dlam(size_t(N * H), 123.f);
    GpuTensor go(t, {1, N, 2 * H, d}, o), glam(t, {N, H}, lam), gdout(t, {1, N, H, d}, dout), gout(t, {1, N, H, d}),
        gd_o(t, {1, N, 2 * H, d}), gdlam(t, {N, H});
    gout.poison();
    gd_o.poison();
    gdlam.poison();
    ops::diff_v2_combine_forward(cpu_f32(out.data(), {1, N, H, d}), cpu_f32(o.data(), {1, N, 2 * H, d}),
                                 cpu_f32(lam.data(), {N, H}));
    ops::diff_v2_combine_forward(gout, go, glam);
    ops::diff_v2_combine_backward(cpu_f32(d_o.data(), {1, N, 2 * H, d}), cpu_f32(dlam.data(), {N, H}),
                                  cpu_f32(dout.data(), {1, N, H, d}), cpu_f32(o.data(), {1, N, 2 * H, d}),
                                  cpu_f32(lam.data(), {N, H}));
    ops::diff_v2_combine_backward(gd_o, gdlam, gdout, go, glam);
    EXPECT_TRUE(close_to(gout.download(), out, elementwise(t), tag("diff_v2 out", t)));
    EXPECT_TRUE(close_to(gd_o.download(), d_o, elementwise(t), tag("diff_v2 d_o", t)));
    EXPECT_TRUE(close_to(gdlam.download(), dlam, elementwise(t), tag("diff_v2 dlam", t)));
  }
}

// ---- cross-entropy --------------------------------------------------------------------
// Losses (f32) are an fp32 log-sum-exp minus a logit, from identical logits: a few
// roundoffs of the logit scale, 1e-5·(1 + max|z|) per row (device exp/log are within a
// few ulps), N times that for the returned sum. The gradient overwrites the logits:
// elementwise(dtype). Ignored rows (target −1) are exactly zero.
TEST(CudaOps, CrossEntropyLossSumAndGradientMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1007);
  const int64_t N = 37, V = 1000;
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng() % V);
  for (int64_t n : {0, 5, 17, 18, 36}) targets[size_t(n)] = -1;
  GpuTensor gtarg(I32, {N});
  gtarg.upload_i32(targets);
  const float gs = 1.f / float(N);
  for (DType t : {BF16, F32}) {
    const auto logits = rand_as(t, N * V, rng, 3.0);
    auto z = logits;
    std::vector<float> losses(size_t(N), 123.f);
    GpuTensor gz(t, {N, V}, logits), gl(F32, {N});
    gl.poison();
    const double want =
        ops::cross_entropy(cpu_f32(z.data(), {N, V}), cpu_i32(targets.data(), {N}), cpu_f32(losses.data(), {N}), gs);
    const double got = ops::cross_entropy(gz, gtarg, gl, gs);
    const double row_tol = 1e-5 * (1.0 + max_abs(logits));
    EXPECT_NEAR(got, want, row_tol * double(N)) << tag("loss sum", t);
    const auto gloss = gl.download(), grad = gz.download();
    EXPECT_TRUE(near_all(gloss, losses, row_tol, 0, tag("per-row losses", t)));
    EXPECT_TRUE(close_to(grad, z, elementwise(t), tag("dlogits", t)));
    for (int64_t n = 0; n < N; ++n) {
      if (targets[size_t(n)] >= 0) continue;
      EXPECT_EQ(gloss[size_t(n)], 0.f) << "ignored row " << n;
      for (int64_t j = 0; j < V; ++j) ASSERT_EQ(grad[size_t(n * V + j)], 0.f) << "ignored row " << n;
    }
    // grad_scale 0: the loss only, logits untouched.
    gz.upload(logits);
    EXPECT_NEAR(ops::cross_entropy(gz, gtarg, gl, 0.f), want, row_tol * double(N)) << tag("loss only", t);
    EXPECT_TRUE(near_all(gz.download(), logits, 0, 0, tag("grad_scale 0 leaves the logits", t)));
  }
}

// Vocabulary columns [v0, v0 + Vl) with v0 > 0; targets inside, outside the shard, or
// −1. rowmax and target_logit pick existing values: exact. sumexp: an fp32 sum of
// Vl = 500 exps <= 1, which the CPU adds sequentially (up to 500 roundoffs): 3e-5
// relative. The gradient uses "global" statistics (a larger max and sum, as after
// the all-reduces): elementwise(dtype). Losses as for cross_entropy.
TEST(CudaOps, VocabParallelCrossEntropyPassesMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1008);
  const int64_t N = 37, Vl = 500, v0 = 1000;
  std::vector<int32_t> targets(N);
  for (int64_t i = 0; i < N; ++i)
    targets[size_t(i)] = i % 7 == 2   ? -1
                         : i % 3 == 0 ? int32_t(v0 + rng() % Vl)
                         : i % 3 == 1 ? int32_t(rng() % v0)
                                      : int32_t(v0 + Vl + rng() % 2000);
  GpuTensor gtarg(I32, {N});
  gtarg.upload_i32(targets);
  Tensor htarg = cpu_i32(targets.data(), {N});
  std::uniform_real_distribution<float> unif(0.f, 1.f);
  for (DType t : {BF16, F32}) {
    const auto logits = rand_as(t, N * Vl, rng, 3.0);
    auto z = logits;
    std::vector<float> rowmax(size_t(N), 123.f), sumexp(rowmax), tl(rowmax);
    GpuTensor gz(t, {N, Vl}, logits), grm(F32, {N}), gse(F32, {N}), gtl(F32, {N});
    grm.poison();
    gse.poison();
    gtl.poison();
    ops::vocab_shard_row_max(cpu_f32(z.data(), {N, Vl}), cpu_f32(rowmax.data(), {N}));
    ops::vocab_shard_row_max(gz, grm);
    EXPECT_TRUE(near_all(grm.download(), rowmax, 0, 0, tag("rowmax", t)));

    grm.upload(rowmax);
    ops::vocab_shard_sumexp_target(cpu_f32(z.data(), {N, Vl}), htarg, v0, cpu_f32(rowmax.data(), {N}),
                                cpu_f32(sumexp.data(), {N}), cpu_f32(tl.data(), {N}));
    ops::vocab_shard_sumexp_target(gz, gtarg, v0, grm, gse, gtl);
    EXPECT_TRUE(near_all(gse.download(), sumexp, 0, 3e-5, tag("sumexp", t)));
    EXPECT_TRUE(near_all(gtl.download(), tl, 0, 0, tag("target_logit", t)));

    std::vector<float> gmax(rowmax.size()), gsum(rowmax.size());
    for (int64_t i = 0; i < N; ++i) {
      gmax[size_t(i)] = rowmax[size_t(i)] + unif(rng);
      gsum[size_t(i)] = sumexp[size_t(i)] * std::exp(rowmax[size_t(i)] - gmax[size_t(i)]) + 0.5f + 1.5f * unif(rng);
    }
    grm.upload(gmax);
    gse.upload(gsum);
    gtl.upload(tl);
    const float gs = 0.25f;
    ops::vocab_shard_grad(cpu_f32(z.data(), {N, Vl}), htarg, v0, cpu_f32(gmax.data(), {N}), cpu_f32(gsum.data(), {N}), gs);
    ops::vocab_shard_grad(gz, gtarg, v0, grm, gse, gs);
    EXPECT_TRUE(close_to(gz.download(), z, elementwise(t), tag("shard dlogits", t)));

    std::vector<float> losses(size_t(N), 123.f);
    GpuTensor gl(F32, {N});
    gl.poison();
    const double want = ops::vocab_shard_loss(cpu_f32(losses.data(), {N}), htarg, cpu_f32(gmax.data(), {N}),
                                           cpu_f32(gsum.data(), {N}), cpu_f32(tl.data(), {N}));
    const double got = ops::vocab_shard_loss(gl, gtarg, grm, gse, gtl);
    const double row_tol = 1e-5 * (1.0 + max_abs(logits));
    EXPECT_TRUE(near_all(gl.download(), losses, row_tol, 0, tag("shard losses", t)));
    EXPECT_NEAR(got, want, row_tol * double(N)) << tag("shard loss sum", t);
  }
}

// ---- optimizer and reductions -----------------------------------------------------------
// Six steps in lockstep (f32 state, grad_scale 0.37, weight decay 0.1, one step with
// 10x gradients). m, v: a few fp32 roundoffs per step, 1e-5 relative. Parameters
// (|p| < ~4): an fp32 rounding of p and of an O(lr) update per step, 5e-6 absolute
// after six steps; a formula error moves p by O(lr) = 5e-2.
TEST(CudaOps, AdamWStepsMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1009);
  const int64_t n = 10007;
  auto p = randn(size_t(n), rng);
  std::vector<float> m(size_t(n), 0.f), v(size_t(n), 0.f);
  GpuTensor gp(F32, {n}, p), gm(F32, {n}, m), gv(F32, {n}, v), gg(F32, {n});
  for (int64_t step = 1; step <= 6; ++step) {
    auto g = randn(size_t(n), rng, step == 3 ? 10.0 : 1.0);
    gg.upload(g);
    const ops::AdamWParams hp{0.05f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.37f};
    ops::adamw(cpu_f32(p.data(), {n}), cpu_f32(g.data(), {n}), cpu_f32(m.data(), {n}), cpu_f32(v.data(), {n}), hp);
    ops::adamw(gp, gg, gm, gv, hp);
    const std::string what = " after step " + std::to_string(step);
    EXPECT_TRUE(near_all(gp.download(), p, 5e-6, 0, "param" + what));
    EXPECT_TRUE(close_to(gm.download(), m, {1e-6, 1e-5}, "m" + what));
    EXPECT_TRUE(close_to(gv.download(), v, {1e-6, 1e-5}, "v" + what));
  }
}

// sum_squares: n = 100003 squares summed in another order, 1e-5 relative. scale: one
// fp32 product (correctly rounded, 6e-8), then for bf16 one rounding (2^-8).
TEST(CudaOps, SumSquaresAndScaleMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1010);
  for (DType t : {BF16, F32}) {
    const int64_t n = 100003;
    auto x = rand_as(t, n, rng, 3.0);
    GpuTensor gx(t, {n}, x);
    const double want = ops::sum_squares(cpu_f32(x.data(), {n}));
    EXPECT_NEAR(ops::sum_squares(gx), want, 1e-5 * want) << tag("sum_squares", t);

    const int64_t m = 1037;
    auto y = rand_as(t, m, rng);
    GpuTensor gy(t, {m}, y);
    ops::scale(cpu_f32(y.data(), {m}), 0.37f);
    ops::scale(gy, 0.37f);
    EXPECT_TRUE(near_all(gy.download(), y, 0, t == BF16 ? 4e-3 : 1.2e-7, tag("scale", t)));
  }
}

// The training step's device accumulators: the loss sum (cross-entropy, and the
// vocab-parallel loss) and Σg² added to an f64 on the device bit for bit as the
// synchronising forms return them; the clipping factor, and AdamW scaled by it
// exactly as by grad_scale.
TEST(CudaOps, DeviceAccumulatorsAndClipFactorMatchTheHostForms) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1012);
  const int64_t N = 37, V = 29;
  const auto z = randn(size_t(N * V), rng, 2.0);
  std::vector<int32_t> ti(static_cast<size_t>(N));
  for (auto& v : ti) v = int32_t(rng() % V);
  GpuTensor gz1(F32, {N, V}, z), gz2(F32, {N, V}, z), gl(F32, {N}), acc(DType::F64, {1}), targets(I32, {N});
  targets.upload_i32(ti);
  ops::fill_zero(acc);
  const double want = ops::cross_entropy(gz1, targets, gl, 0.5f);
  EXPECT_EQ(ops::cross_entropy(gz2, targets, gl, 0.5f, acc), 0.0);
  ops::sum_squares(gz1, acc);
  const double sq = ops::sum_squares(gz1);
  double got = 0;
  device_copy(&got, Device::cpu(), acc.tensor().ptr, acc.tensor().device, sizeof got);
  EXPECT_EQ(got, want + sq);

  GpuTensor factor(F32, {1}), norm_sq(DType::F64, {1});
  const double sixteen = 16.0;
  device_copy(norm_sq.tensor().ptr, norm_sq.tensor().device, &sixteen, Device::cpu(), sizeof sixteen);
  ops::clip_factor(factor, norm_sq, 1.0);
  EXPECT_EQ(factor.download()[0], 0.25f);
  ops::clip_factor(factor, norm_sq, 8.0);
  EXPECT_EQ(factor.download()[0], 1.f);

  const std::vector<float> p{1.f, -2.f, 0.5f}, g{0.3f, -4.f, 2e-3f}, zero(3, 0.f);
  GpuTensor p1(F32, {3}, p), p2(F32, {3}, p), gg(F32, {3}, g), m1(F32, {3}, zero), v1(F32, {3}, zero),
      m2(F32, {3}, zero), v2(F32, {3}, zero);
  ops::clip_factor(factor, norm_sq, 1.0);  // 0.25
  ops::adamw(p1, gg, m1, v1, {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 2, 0.25f});
  ops::adamw(p2, gg, m2, v2, {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 2, 1.f, factor});
  EXPECT_EQ(p1.download(), p2.download());
}

// f32 → bf16 on the device rounds to nearest even (ties to even, overflow to inf),
// compared bit for bit with the host rounding; bf16 → f32 and same-dtype copies are exact.
TEST(CudaOps, CopyRoundsF32ToBf16ToNearestEvenAndBackExactly) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(1011);
  auto x = randn(1000, rng);
  for (size_t i = 0; i < x.size(); i += 3) x[i] *= 1e-3f;
  for (size_t i = 1; i < x.size(); i += 7) x[i] *= 1e30f;
  // (f32 bits, expected bf16 bits): exact ties go to the even neighbour.
  const std::pair<uint32_t, uint16_t> special[] = {{0x3F808000u, 0x3F80}, {0x3F818000u, 0x3F82}, {0xBF808000u, 0xBF80},
                                                   {0x3F808001u, 0x3F81}, {0x7F7F8000u, 0x7F80}, {0x7F800000u, 0x7F80},
                                                   {0xFF800000u, 0xFF80}, {0x80000000u, 0x8000}};
  for (auto [f, b] : special) {
    float v;
    std::memcpy(&v, &f, 4);
    ASSERT_EQ(bf16_bits(v), b) << "host rounding of 0x" << std::hex << f;
    x.push_back(v);
  }
  const int64_t n = int64_t(x.size());
  GpuTensor gf(F32, {n}, x), gb(BF16, {n}), gback(F32, {n}), gsame(F32, {n});
  gb.poison();
  gback.poison();
  gsame.poison();
  ops::copy(gb, gf);
  std::vector<uint16_t> bits(x.size());
  ops::copy(Tensor(bits.data(), BF16, {n}), gb);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(bits[i], bf16_bits(x[i])) << "element " << i << " = " << x[i] << std::hex << ": got 0x" << bits[i];
  ops::copy(gback, gb);
  EXPECT_TRUE(near_all(gback.download(), rounded_to(x, BF16), 0, 0, "bf16 -> f32"));
  ops::copy(gsame, gf);
  EXPECT_TRUE(near_all(gsame.download(), x, 0, 0, "f32 -> f32 on the device"));
}

// fill writes the exact value everywhere: n is past one full grid (4096 blocks of 256),
// so the grid-stride loop and its ragged tail both run.
TEST(CudaOps, FillSetsEveryElement) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  const int64_t n = 4096 * 256 + 1000;
  GpuTensor x(F32, {n});
  x.poison();
  ops::fill(x, -2.5f);
  EXPECT_TRUE(near_all(x.download(), std::vector<float>(size_t(n), -2.5f), 0, 0, "fill"));
}

// The MFU peak (bf16 GEMMs on patterned inputs, timed with events) runs and yields a
// positive, finite rate; its value is a benchmark's business, not a test's.
TEST(CudaOps, GemmPeakMeasurementRuns) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  const double gflops = measure_cuda_gemm_gflops(0, 64);
  EXPECT_TRUE(std::isfinite(gflops) && gflops > 0) << gflops;
}

// ---- errors ---------------------------------------------------------------------------
// A CUDA op given a host tensor, or a dtype the CUDA op does not take, fails with
// dt::Error (a clear line), never a crash or silently wrong numbers.
TEST(CudaOps, HostTensorOrWrongDtypeFailsWithError) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  const int64_t B = 1, T = 8, H = 2, d = 64;
  GpuTensor q32(F32, {B, T, H, d}), k(BF16, {B, T, H, d}), v(BF16, {B, T, H, d}), out(BF16, {B, T, H, d}),
      lse(F32, {B, H, T});
  for (const GpuTensor* g : {&q32, &k, &v, &out, &lse}) ops::fill_zero(*g);
  EXPECT_THROW(ops::attention_forward(out, lse, q32, k, v), Error) << "attention needs bf16 q";

  std::vector<float> host(size_t(T * d), 1.f);
  GpuTensor x(BF16, {T, d}), y(BF16, {T, d}), rstd(F32, {T}), a32(F32, {T, d}), c32(F32, {T, T});
  for (const GpuTensor* g : {&x, &a32}) ops::fill_zero(*g);
  EXPECT_THROW(ops::rmsnorm_forward(y, rstd, x, cpu_f32(host.data(), {d}), 1e-5f), Error) << "g on the host";
  EXPECT_THROW(ops::matmul(c32, cpu_f32(host.data(), {T, d}), false, a32, true), Error) << "A on the host";

  GpuTensor p(F32, {16}), g(F32, {16}), m16(BF16, {16}), v32(F32, {16});
  for (const GpuTensor* t : {&p, &g, &m16, &v32}) ops::fill_zero(*t);
  EXPECT_THROW(ops::adamw(p, g, m16, v32, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.f, 1, 1.f}), Error) << "m must be f32";
  EXPECT_THROW(ops::copy(x, cpu_f32(host.data(), {T, d})), Error) << "host f32 into device bf16";
}

}  // namespace
