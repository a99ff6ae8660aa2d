// The CUDA attention kernels against the CPU backend (DESIGN §3): standard and
// differential attention forward and backward on a grid of sequence lengths (1, and
// lengths that are no multiple of any tile), head sizes 64 and 128, and MHA / GQA;
// the context-parallel blocks, their log-sum-exp merge and the differential combine.
// Every test skips without a GPU.
//
// Attention tensors (q, k, v, out, dout, dq, dk, dv) are bf16 on CUDA; inputs are
// drawn in fp32, rounded to bf16, and the CPU op runs on those same values. A
// backward gets the GPU forward's out/lse (or cache) on both sides, so each
// comparison measures one kernel's error. Device outputs are poisoned (NaN) first.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/unit/test_util.hpp"

namespace {

using namespace dt;
using namespace dt_test;
using reftest::randn;
constexpr DType F32 = DType::F32, BF16 = DType::BF16;

// Forward out (bf16): a flash kernel rounds its probabilities to bf16 for the P·V
// product and rounds the output once, both 2^-8 ≈ 3.9e-3 relative; P's rounding
// errors are independent per key, so the error stays a few 2^-8 of the output scale:
// atol 1e-2 of max|out|, rtol 2e-2. lse (f32): scores from exact bf16 products summed
// in fp32 over d terms, then an fp32 log-sum-exp: 1e-4·(1 + max|lse|).
constexpr Tol kOut{1e-2, 2e-2};
constexpr double kLse = 1e-4;

// Backward (bf16 dq, dk, dv): sums over up to T rows of products whose factors P and
// dS = P∘(dP − D) are rounded to bf16 for the tensor cores. Random-sign rounding
// errors grow like √T, as the sums themselves do, so the relative error stays a few
// 2^-8: atol 1e-2 of each gradient's scale (of its increment for "+=" outputs), rtol
// 2e-2, and a floor of 1e-4 for T = 1, where dq and dk are zero up to roundoff.
::testing::AssertionResult grad_close(const std::vector<float>& got, const std::vector<float>& want,
                                      const std::vector<float>& before, const std::string& what) {
  double scale = 0;
  for (size_t i = 0; i < want.size(); ++i)
    scale = std::max(scale, std::fabs(double(want[i]) - (before.empty() ? 0.0 : double(before[i]))));
  return near_all(got, want, 1e-2 * scale + 1e-4, 2e-2, what);
}

// B = 2 sequences; T, head size d, query heads / kv heads.
constexpr int64_t B = 2;
struct Case {
  int64_t T, d, heads, kv;
  std::string str() const {
    return " T=" + std::to_string(T) + " d=" + std::to_string(d) + " heads=" + std::to_string(heads) +
           " kv=" + std::to_string(kv);
  }
};
std::vector<Case> grid() {
  std::vector<Case> g;
  for (int64_t T : {1, 77, 256, 300})
    for (int64_t d : {64, 128})
      for (auto [h, kv] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}}) g.push_back({T, d, h, kv});
  return g;
}

Tensor host(std::vector<float>& x, std::initializer_list<int64_t> dims) { return cpu_f32(x.data(), dims); }

// ---- standard attention ----------------------------------------------------------------
TEST(CudaAttention, ForwardAndBackwardMatchCpuOnTheGrid) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2001);
  for (const Case& c : grid()) {
    const int64_t T = c.T, d = c.d, H = c.heads, KV = c.kv;
    auto q = rand_as(BF16, B * T * H * d, rng), k = rand_as(BF16, B * T * KV * d, rng),
         v = rand_as(BF16, B * T * KV * d, rng), dout = rand_as(BF16, B * T * H * d, rng);
    std::vector<float> out(q.size(), 123.f), lse(size_t(B * H * T), 123.f);
    GpuTensor gq(BF16, {B, T, H, d}, q), gk(BF16, {B, T, KV, d}, k), gv(BF16, {B, T, KV, d}, v),
        gout(BF16, {B, T, H, d}), glse(F32, {B, H, T});
    gout.poison();
    glse.poison();
    ops::attention_forward(host(out, {B, T, H, d}), host(lse, {B, H, T}), host(q, {B, T, H, d}), host(k, {B, T, KV, d}),
                           host(v, {B, T, KV, d}));
    ops::attention_forward(gout, glse, gq, gk, gv);
    auto gpu_out = gout.download(), gpu_lse = glse.download();
    EXPECT_TRUE(close_to(gpu_out, out, kOut, "attention out" + c.str()));
    EXPECT_TRUE(near_all(gpu_lse, lse, kLse * (1 + max_abs(lse)), 0, "attention lse" + c.str()));

    std::vector<float> dq(q.size(), 123.f), dk(k.size(), 123.f), dv(v.size(), 123.f);
    GpuTensor gdout(BF16, {B, T, H, d}, dout), gdq(BF16, {B, T, H, d}), gdk(BF16, {B, T, KV, d}),
        gdv(BF16, {B, T, KV, d});
    gdq.poison();
    gdk.poison();
    gdv.poison();
    ops::attention_backward(host(dq, {B, T, H, d}), host(dk, {B, T, KV, d}), host(dv, {B, T, KV, d}),
                            host(dout, {B, T, H, d}), host(q, {B, T, H, d}), host(k, {B, T, KV, d}),
                            host(v, {B, T, KV, d}), host(gpu_out, {B, T, H, d}), host(gpu_lse, {B, H, T}));
    ops::attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse);
    EXPECT_TRUE(grad_close(gdq.download(), dq, {}, "attention dq" + c.str()));
    EXPECT_TRUE(grad_close(gdk.download(), dk, {}, "attention dk" + c.str()));
    EXPECT_TRUE(grad_close(gdv.download(), dv, {}, "attention dv" + c.str()));
  }
}

// ---- differential attention ------------------------------------------------------------
// H differential heads (2H query sub-heads of d), KV kv heads (2KV key sub-heads, values
// of width 2d). out and the cache's o1, o2: kOut. rstd (f32) = 1/rms(o1 − λ·o2) over 2d
// values whose rounding errors are independent: 5e-3 relative. The λ-vector and g_sub
// gradients ("+=") are sums over every output of products of exact cached values, and
// their increments are held to 2e-2 of their scale.
TEST(CudaDiffAttention, ForwardAndBackwardMatchCpuOnTheGrid) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2002);
  const float eps = 1e-5f, lambda_init = float(0.8 - 0.6 * std::exp(-0.3 * 1.0));  // layer 1
  for (const Case& c : grid()) {
    const int64_t T = c.T, d = c.d, H = c.heads, KV = c.kv, w = 2 * d;
    auto q = rand_as(BF16, B * T * 2 * H * d, rng), k = rand_as(BF16, B * T * 2 * KV * d, rng),
         v = rand_as(BF16, B * T * KV * w, rng), dout = rand_as(BF16, B * T * H * w, rng);
    std::vector<float> lamv[4], g_sub = randn(size_t(w), rng, 0.3, 1.0);
    for (auto& l : lamv) l = randn(size_t(d), rng, 0.1);  // DESIGN §2 init: λ near λ_init
    GpuTensor glam[4] = {{F32, {d}, lamv[0]}, {F32, {d}, lamv[1]}, {F32, {d}, lamv[2]}, {F32, {d}, lamv[3]}};
    const ops::DiffLambda cpu_lam{host(lamv[0], {d}), host(lamv[1], {d}), host(lamv[2], {d}), host(lamv[3], {d}),
                                  lambda_init};
    const ops::DiffLambda gpu_lam{glam[0], glam[1], glam[2], glam[3], lambda_init};
    GpuTensor gq(BF16, {B, T, 2 * H, d}, q), gk(BF16, {B, T, 2 * KV, d}, k), gv(BF16, {B, T, KV, w}, v),
        gg(F32, {w}, g_sub);

    const size_t nout = size_t(B * T * H * w), nstat = size_t(B * H * T);
    std::vector<float> out(nout, 123.f), o1(out), o2(out), lse1(nstat, 123.f), lse2(lse1), rstd(lse1);
    GpuTensor gout(BF16, {B, T, H, w}), go1(BF16, {B, T, H, w}), go2(BF16, {B, T, H, w}), glse1(F32, {B, H, T}),
        glse2(F32, {B, H, T}), grstd(F32, {B, T, H});
    for (GpuTensor* g : {&gout, &go1, &go2, &glse1, &glse2, &grstd}) g->poison();
    const ops::DiffAttnCache gcache{go1, go2, glse1, glse2, grstd};
    ops::diff_attention_forward(host(out, {B, T, H, w}),
                                {host(o1, {B, T, H, w}), host(o2, {B, T, H, w}), host(lse1, {B, H, T}),
                                 host(lse2, {B, H, T}), host(rstd, {B, T, H})},
                                host(q, {B, T, 2 * H, d}), host(k, {B, T, 2 * KV, d}), host(v, {B, T, KV, w}), cpu_lam,
                                host(g_sub, {w}), eps);
    ops::diff_attention_forward(gout, gcache, gq, gk, gv, gpu_lam, gg, eps);
    auto c1 = go1.download(), c2 = go2.download(), l1 = glse1.download(), l2 = glse2.download(), r = grstd.download();
    EXPECT_TRUE(close_to(gout.download(), out, kOut, "diff out" + c.str()));
    EXPECT_TRUE(close_to(c1, o1, kOut, "diff cache o1" + c.str()));
    EXPECT_TRUE(close_to(c2, o2, kOut, "diff cache o2" + c.str()));
    EXPECT_TRUE(near_all(l1, lse1, kLse * (1 + max_abs(lse1)), 0, "diff cache lse1" + c.str()));
    EXPECT_TRUE(near_all(l2, lse2, kLse * (1 + max_abs(lse2)), 0, "diff cache lse2" + c.str()));
    EXPECT_TRUE(near_all(r, rstd, 0, 5e-3, "diff cache rstd" + c.str()));

    // Backward from the GPU's cache on both sides; λ and g_sub gradients start at 0.25.
    const std::vector<float> pre_d(size_t(d), 0.25f), pre_w(size_t(w), 0.25f);
    std::vector<float> dq(q.size(), 123.f), dk(k.size(), 123.f), dv(v.size(), 123.f), dl[4], dg = pre_w;
    for (auto& e : dl) e = pre_d;
    GpuTensor gdout(BF16, {B, T, H, w}, dout), gdq(BF16, {B, T, 2 * H, d}), gdk(BF16, {B, T, 2 * KV, d}),
        gdv(BF16, {B, T, KV, w}), gdg(F32, {w}, pre_w);
    GpuTensor gdl[4] = {{F32, {d}, pre_d}, {F32, {d}, pre_d}, {F32, {d}, pre_d}, {F32, {d}, pre_d}};
    for (GpuTensor* g : {&gdq, &gdk, &gdv}) g->poison();
    ops::diff_attention_backward(
        host(dq, {B, T, 2 * H, d}), host(dk, {B, T, 2 * KV, d}), host(dv, {B, T, KV, w}),
        {host(dl[0], {d}), host(dl[1], {d}), host(dl[2], {d}), host(dl[3], {d})}, host(dg, {w}),
        host(dout, {B, T, H, w}), host(q, {B, T, 2 * H, d}), host(k, {B, T, 2 * KV, d}), host(v, {B, T, KV, w}),
        cpu_lam, host(g_sub, {w}),
        {host(c1, {B, T, H, w}), host(c2, {B, T, H, w}), host(l1, {B, H, T}), host(l2, {B, H, T}), host(r, {B, T, H})},
        eps);
    ops::diff_attention_backward(gdq, gdk, gdv, {gdl[0], gdl[1], gdl[2], gdl[3]}, gdg, gdout, gq, gk, gv, gpu_lam, gg,
                                 gcache, eps);
    EXPECT_TRUE(grad_close(gdq.download(), dq, {}, "diff dq" + c.str()));
    EXPECT_TRUE(grad_close(gdk.download(), dk, {}, "diff dk" + c.str()));
    EXPECT_TRUE(grad_close(gdv.download(), dv, {}, "diff dv" + c.str()));
    const char* names[4] = {"dlambda_q1", "dlambda_k1", "dlambda_q2", "dlambda_k2"};
    for (int j = 0; j < 4; ++j)
      EXPECT_TRUE(grad_close(gdl[j].download(), dl[j], pre_d, std::string("diff ") + names[j] + " +=" + c.str()));
    EXPECT_TRUE(grad_close(gdg.download(), dg, pre_w, "diff dg_sub +=" + c.str()));
  }
}

// ---- context-parallel building blocks ---------------------------------------------------
// Elements of a (B, T, ...) or (B, heads, T) tensor of `inner` values per row t, split
// by whether t lies in [q0, q0 + nq).
struct Rows {
  std::vector<float> in, out;
};
Rows split_rows(const std::vector<float>& x, int64_t T, int64_t inner, int64_t q0, int64_t nq) {
  Rows r;
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t t = int64_t(i) / inner % T;
    (t >= q0 && t < q0 + nq ? r.in : r.out).push_back(x[i]);
  }
  return r;
}
bool all_nan(const std::vector<float>& x) {
  return std::all_of(x.begin(), x.end(), [](float e) { return std::isnan(e); });
}

// A local sequence of two chunks of C = 77 rows: the second chunk's queries against
// the first chunk's keys (every key visible, q0 ≠ k0) and against their own chunk
// (causal), with one map (standard) and two (differential, map 1 scaled by −λ in the
// backward). The forward writes only the block's rows (the rest stays NaN); the
// backward adds into random dq, dk, dv. Tolerances as for attention above.
TEST(CudaAttentionBlocks, BlockForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2003);
  const int64_t C = 77, T = 2 * C, heads = 4, kv = 2, d = 64;
  for (int maps : {1, 2})
    for (const ops::AttnBlock blk :
         {ops::AttnBlock{int(C), int(C), 0, int(C), false}, ops::AttnBlock{int(C), int(C), int(C), int(C), true}}) {
      const int64_t dv = maps == 2 ? 2 * d : d, hq = heads * maps, hk = kv * maps;
      const std::string what = " maps=" + std::to_string(maps) + (blk.causal ? " causal" : " full");
      auto q = rand_as(BF16, B * T * hq * d, rng), k = rand_as(BF16, B * T * hk * d, rng),
           v = rand_as(BF16, B * T * kv * dv, rng), dO = rand_as(BF16, B * T * heads * dv, rng);
      GpuTensor gq(BF16, {B, T, hq, d}, q), gk(BF16, {B, T, hk, d}, k), gv(BF16, {B, T, kv, dv}, v);
      std::vector<float> out[2], lse[2];
      GpuTensor gout[2] = {{BF16, {B, T, heads, dv}}, {BF16, {B, T, heads, dv}}};
      GpuTensor glse[2] = {{F32, {B, heads, T}}, {F32, {B, heads, T}}};
      Tensor hout[2], hlse[2], tout[2], tlse[2];
      for (int m = 0; m < maps; ++m) {
        out[m].assign(size_t(B * T * heads * dv), 123.f);
        lse[m].assign(size_t(B * heads * T), 123.f);
        gout[m].poison();
        glse[m].poison();
        hout[m] = host(out[m], {B, T, heads, dv}), hlse[m] = host(lse[m], {B, heads, T});
        tout[m] = gout[m], tlse[m] = glse[m];
      }
      ops::attention_block_forward(maps, hout, hlse, host(q, {B, T, hq, d}), host(k, {B, T, hk, d}),
                                   host(v, {B, T, kv, dv}), blk);
      ops::attention_block_forward(maps, tout, tlse, gq, gk, gv, blk);

      // The merged results the backward reads: the GPU's block rows, zeros elsewhere.
      std::vector<float> O[2], L[2];
      GpuTensor gO[2] = {{BF16, {B, T, heads, dv}}, {BF16, {B, T, heads, dv}}};
      GpuTensor gL[2] = {{F32, {B, heads, T}}, {F32, {B, heads, T}}};
      Tensor cO[2], cL[2], tO[2], tL[2];
      for (int m = 0; m < maps; ++m) {
        const std::string mm = " map " + std::to_string(m) + what;
        O[m] = gout[m].download(), L[m] = glse[m].download();
        const Rows go = split_rows(O[m], T, heads * dv, blk.q0, blk.nq), gl = split_rows(L[m], T, 1, blk.q0, blk.nq);
        const Rows co = split_rows(out[m], T, heads * dv, blk.q0, blk.nq),
                   cl = split_rows(lse[m], T, 1, blk.q0, blk.nq);
        EXPECT_TRUE(close_to(go.in, co.in, kOut, "block out" + mm));
        EXPECT_TRUE(near_all(gl.in, cl.in, kLse * (1 + max_abs(cl.in)), 0, "block lse" + mm));
        EXPECT_TRUE(all_nan(go.out) && all_nan(gl.out)) << "block forward wrote rows outside the block" << mm;
        for (auto* x : {&O[m], &L[m]})
          std::replace_if(
              x->begin(), x->end(), [](float e) { return std::isnan(e); }, 0.f);
        gO[m].upload(O[m]), gL[m].upload(L[m]);
        cO[m] = host(O[m], {B, T, heads, dv}), cL[m] = host(L[m], {B, heads, T});
        tO[m] = gO[m], tL[m] = gL[m];
      }
      auto dq0 = rand_as(BF16, B * T * hq * d, rng), dk0 = rand_as(BF16, B * T * hk * d, rng),
           dv0 = rand_as(BF16, B * T * kv * dv, rng);
      auto dq = dq0, dk = dk0, dvv = dv0;
      GpuTensor gdq(BF16, {B, T, hq, d}, dq0), gdk(BF16, {B, T, hk, d}, dk0), gdv(BF16, {B, T, kv, dv}, dv0),
          gdO(BF16, {B, T, heads, dv}, dO);
      const float dscale[2] = {1.f, -0.6f};
      ops::attention_block_backward(maps, host(dq, {B, T, hq, d}), host(dk, {B, T, hk, d}), host(dvv, {B, T, kv, dv}),
                                    host(dO, {B, T, heads, dv}), dscale, cO, cL, host(q, {B, T, hq, d}),
                                    host(k, {B, T, hk, d}), host(v, {B, T, kv, dv}), blk);
      ops::attention_block_backward(maps, gdq, gdk, gdv, gdO, dscale, tO, tL, gq, gk, gv, blk);
      EXPECT_TRUE(grad_close(gdq.download(), dq, dq0, "block dq +=" + what));
      EXPECT_TRUE(grad_close(gdk.download(), dk, dk0, "block dk +=" + what));
      EXPECT_TRUE(grad_close(gdv.download(), dvv, dv0, "block dv +=" + what));
    }
}

// out (bf16) = out·e^(lse − lse') + blk·e^(lse_b − lse'): two exact bf16 terms weighted
// in fp32, one rounding (rtol 2e-2, atol 1e-3 of the scale). lse (f32): an fp32 log of
// a sum of two exps of |lse| < ~7, 1e-4 absolute. Entries of −inf (an empty running
// state, an empty block, or both) and rows outside [q0, q0 + nq) behave as on the CPU.
TEST(CudaAttentionBlocks, MergeByLogSumExpMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2004);
  const int64_t T = 40, H = 3, dv = 64;
  const int q0 = 10, nq = 20;
  auto out = rand_as(BF16, B * T * H * dv, rng), blk = rand_as(BF16, B * T * H * dv, rng);
  auto lse = randn(size_t(B * H * T), rng, 1.0, 2.0), blse = randn(size_t(B * H * T), rng, 1.0, 2.0);
  for (size_t i = 0; i < lse.size(); i += 11) lse[i] = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < blse.size(); i += 13) blse[i] = -std::numeric_limits<float>::infinity();
  GpuTensor gout(BF16, {B, T, H, dv}, out), glse(F32, {B, H, T}, lse), gblk(BF16, {B, T, H, dv}, blk),
      gblse(F32, {B, H, T}, blse);
  ops::attention_merge(host(out, {B, T, H, dv}), host(lse, {B, H, T}), host(blk, {B, T, H, dv}), host(blse, {B, H, T}),
                       q0, nq);
  ops::attention_merge(gout, glse, gblk, gblse, q0, nq);
  EXPECT_TRUE(close_to(gout.download(), out, {1e-3, 2e-2}, "merged out"));
  EXPECT_TRUE(near_all(glse.download(), lse, 1e-4, 0, "merged lse"));
}

// Forward: RMSNorm of o1 − λ·o2 from exact bf16 inputs in fp32; out (bf16) one rounding
// (atol 1e-3 of the scale, rtol 2e-2), rstd (f32) 1e-5. Backward: dpre (bf16,
// overwritten) likewise; dg_sub (f32 +=) sums over B·T·H rows, 1e-5 of the scale;
// dλ = −Σ dpre·o2 over every element, 1e-5 of Σ|dpre·o2| for fp32 (or atomic)
// accumulation. diff_lambda and diff_lambda_backward: a d-term fp32 dot and exps,
// 1e-6 of the terms' size.
TEST(CudaAttentionBlocks, DiffCombineAndLambdaMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2005);
  const int64_t T = 77, H = 4, d = 64, w = 2 * d, n = B * T * H * w;
  const float eps = 1e-5f, lambda_init = float(0.8 - 0.6 * std::exp(-0.3 * 2.0));
  std::vector<float> lamv[4];
  for (auto& l : lamv) l = randn(size_t(d), rng, 0.1);
  GpuTensor glam[4] = {{F32, {d}, lamv[0]}, {F32, {d}, lamv[1]}, {F32, {d}, lamv[2]}, {F32, {d}, lamv[3]}};
  const ops::DiffLambda cpu_lam{host(lamv[0], {d}), host(lamv[1], {d}), host(lamv[2], {d}), host(lamv[3], {d}),
                                lambda_init};
  const ops::DiffLambda gpu_lam{glam[0], glam[1], glam[2], glam[3], lambda_init};
  const float lambda = ops::diff_lambda(cpu_lam);
  double dots = 0;
  for (int64_t i = 0; i < d; ++i) dots += std::fabs(lamv[0][i] * lamv[1][i]) + std::fabs(lamv[2][i] * lamv[3][i]);
  EXPECT_NEAR(ops::diff_lambda(gpu_lam), lambda, 1e-6 * (std::exp(dots) * 2 + lambda_init)) << "diff_lambda";

  auto o1 = rand_as(BF16, n, rng), o2 = rand_as(BF16, n, rng), dout = rand_as(BF16, n, rng);
  auto g_sub = randn(size_t(w), rng, 0.3, 1.0);
  std::vector<float> out(size_t(n), 123.f), rstd(size_t(B * T * H), 123.f);
  GpuTensor go1(BF16, {B, T, H, w}, o1), go2(BF16, {B, T, H, w}, o2), gg(F32, {w}, g_sub), gout(BF16, {B, T, H, w}),
      grstd(F32, {B, T, H});
  gout.poison();
  grstd.poison();
  ops::diff_combine_forward(host(out, {B, T, H, w}), host(rstd, {B, T, H}), host(o1, {B, T, H, w}),
                            host(o2, {B, T, H, w}), lambda, lambda_init, host(g_sub, {w}), eps);
  ops::diff_combine_forward(gout, grstd, go1, go2, lambda, lambda_init, gg, eps);
  EXPECT_TRUE(close_to(gout.download(), out, {1e-3, 2e-2}, "combine out"));
  EXPECT_TRUE(close_to(grstd.download(), rstd, {1e-5, 1e-5}, "combine rstd"));

  const std::vector<float> dg0 = randn(size_t(w), rng);
  std::vector<float> dpre(size_t(n), 123.f), dg = dg0;
  GpuTensor gdpre(BF16, {B, T, H, w}), gdg(F32, {w}, dg0), gdout(BF16, {B, T, H, w}, dout),
      grstd_in(F32, {B, T, H}, rstd);
  gdpre.poison();
  const double want = ops::diff_combine_backward(host(dpre, {B, T, H, w}), host(dg, {w}), host(dout, {B, T, H, w}),
                                                 host(o1, {B, T, H, w}), host(o2, {B, T, H, w}), host(rstd, {B, T, H}),
                                                 lambda, lambda_init, host(g_sub, {w}));
  const double got = ops::diff_combine_backward(gdpre, gdg, gdout, go1, go2, grstd_in, lambda, lambda_init, gg);
  double terms = 0;
  for (int64_t i = 0; i < n; ++i) terms += std::fabs(double(dpre[size_t(i)]) * o2[size_t(i)]);
  EXPECT_NEAR(got, want, 1e-5 * terms) << "combine dlambda";
  EXPECT_TRUE(close_to(gdpre.download(), dpre, {1e-3, 2e-2}, "combine dpre"));
  EXPECT_TRUE(close_to(gdg.download(), dg, {1e-5, 1e-5}, "combine dg_sub +="));

  const std::vector<float> pre = randn(size_t(d), rng);
  std::vector<float> dl[4];
  GpuTensor gdl[4] = {{F32, {d}, pre}, {F32, {d}, pre}, {F32, {d}, pre}, {F32, {d}, pre}};
  for (auto& e : dl) e = pre;
  ops::diff_lambda_backward({host(dl[0], {d}), host(dl[1], {d}), host(dl[2], {d}), host(dl[3], {d})}, cpu_lam, want);
  ops::diff_lambda_backward({gdl[0], gdl[1], gdl[2], gdl[3]}, gpu_lam, want);
  for (int j = 0; j < 4; ++j)
    EXPECT_TRUE(close_to(gdl[j].download(), dl[j], {1e-6, 1e-6}, "diff_lambda_backward vector " + std::to_string(j)));
}

}  // namespace
