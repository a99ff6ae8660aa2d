// The CUDA attention kernels against the CPU backend (DESIGN §3): standard and
// differential attention forward and backward on a grid of sequence lengths (1, and
// lengths that are no multiple of any tile), head sizes 64 and 128, and MHA / GQA
// (tolerances in test_util.hpp). The context-parallel ops: test_cuda_context_parallel.cpp.
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

// B = 2 sequences; T, head size d, query heads / kv heads.
constexpr int64_t B = 2;
struct Case {
  int64_t T, d, heads, kv;
  std::string str() const {
    return " T=" + std::to_string(T) + " d=" + std::to_string(d) + " heads=" + std::to_string(heads) +
           " kv=" + std::to_string(kv);
  }
};
// GQA ratios 1 and 2 on every length; 4 on a length below one tile and one that is
// no multiple of a tile.
std::vector<Case> grid() {
  std::vector<Case> g;
  for (int64_t T : {1, 77, 256, 300})
    for (int64_t d : {64, 128})
      for (auto [h, kv] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}}) g.push_back({T, d, h, kv});
  g.push_back({20, 128, 4, 1});
  g.push_back({77, 64, 4, 1});
  return g;
}

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
    EXPECT_TRUE(close_to(gpu_out, out, kAttnOut, "attention out" + c.str()));
    EXPECT_TRUE(near_all(gpu_lse, lse, kAttnLse * (1 + max_abs(lse)), 0, "attention lse" + c.str()));

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
    EXPECT_TRUE(attn_grad_close(gdq.download(), dq, {}, "attention dq" + c.str()));
    EXPECT_TRUE(attn_grad_close(gdk.download(), dk, {}, "attention dk" + c.str()));
    EXPECT_TRUE(attn_grad_close(gdv.download(), dv, {}, "attention dv" + c.str()));
  }
}

// ---- differential attention ------------------------------------------------------------
// H differential heads (2H query sub-heads of d), KV kv heads (2KV key sub-heads, values
// of width 2d). out and the cache's o1, o2: kAttnOut. rstd (f32) = 1/rms(o1 − λ·o2) over 2d
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
    EXPECT_TRUE(close_to(gout.download(), out, kAttnOut, "diff out" + c.str()));
    EXPECT_TRUE(close_to(c1, o1, kAttnOut, "diff cache o1" + c.str()));
    EXPECT_TRUE(close_to(c2, o2, kAttnOut, "diff cache o2" + c.str()));
    EXPECT_TRUE(near_all(l1, lse1, kAttnLse * (1 + max_abs(lse1)), 0, "diff cache lse1" + c.str()));
    EXPECT_TRUE(near_all(l2, lse2, kAttnLse * (1 + max_abs(lse2)), 0, "diff cache lse2" + c.str()));
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
    EXPECT_TRUE(attn_grad_close(gdq.download(), dq, {}, "diff dq" + c.str()));
    EXPECT_TRUE(attn_grad_close(gdk.download(), dk, {}, "diff dk" + c.str()));
    EXPECT_TRUE(attn_grad_close(gdv.download(), dv, {}, "diff dv" + c.str()));
    const char* names[4] = {"dlambda_q1", "dlambda_k1", "dlambda_q2", "dlambda_k2"};
    for (int j = 0; j < 4; ++j)
      EXPECT_TRUE(attn_grad_close(gdl[j].download(), dl[j], pre_d, std::string("diff ") + names[j] + " +=" + c.str()));
    EXPECT_TRUE(attn_grad_close(gdg.download(), dg, pre_w, "diff dg_sub +=" + c.str()));
  }
}

}  // namespace
