// The CUDA context-parallel building blocks against the CPU backend (DESIGN §3, §4):
// block attention forward and backward (one map and two, the second's gradient
// scaled by −λ computed on the device), the log-sum-exp merge, and the differential
// combine with λ and its gradient kept on the device. Inputs are bf16-rounded as in
// test_cuda_attention.cpp; tolerances of the attention kernels in test_util.hpp.
// Every test skips without a GPU.
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
constexpr int64_t B = 2;

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

// A local sequence of two chunks of C rows; C, head size d, query heads / kv heads.
struct BlockCase {
  int64_t C, d, heads, kv;
};

// The second chunk's queries against the first chunk's keys (every key visible,
// q0 ≠ k0) and against their own chunk (causal), with one map (standard) and two
// (differential). The forward writes only the block's rows (the rest stays NaN);
// the backward adds into random dq, dk, dv.
void check_block(const BlockCase& bc, int maps, bool causal, std::mt19937& rng) {
  const int64_t C = bc.C, T = 2 * C, heads = bc.heads, kv = bc.kv, d = bc.d;
  const int64_t dv = maps == 2 ? 2 * d : d, hq = heads * maps, hk = kv * maps;
  const ops::AttnBlock blk{int(C), int(C), causal ? int(C) : 0, int(C), causal};
  const std::string what = " C=" + std::to_string(C) + " d=" + std::to_string(d) + " heads=" +
                           std::to_string(heads) + " kv=" + std::to_string(kv) + " maps=" + std::to_string(maps) +
                           (causal ? " causal" : " full");
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
    const Rows co = split_rows(out[m], T, heads * dv, blk.q0, blk.nq), cl = split_rows(lse[m], T, 1, blk.q0, blk.nq);
    EXPECT_TRUE(close_to(go.in, co.in, kAttnOut, "block out" + mm));
    EXPECT_TRUE(near_all(gl.in, cl.in, kAttnLse * (1 + max_abs(cl.in)), 0, "block lse" + mm));
    EXPECT_TRUE(all_nan(go.out) && all_nan(gl.out)) << "block forward wrote rows outside the block" << mm;
    for (auto* x : {&O[m], &L[m]})
      std::replace_if(
          x->begin(), x->end(), [](float e) { return std::isnan(e); }, 0.f);
    gO[m].upload(O[m]), gL[m].upload(L[m]);
    cO[m] = host(O[m], {B, T, heads, dv}), cL[m] = host(L[m], {B, heads, T});
    tO[m] = gO[m], tL[m] = gL[m];
  }
  // λ vectors ~ N(0, 0.3): λ far enough from λ_init that a wrong sign or scale shows.
  LambdaVectors lam(d, 0.5f, rng, 0.3);
  const ops::DiffLambda cpu_lam = lam.cpu(), gpu_lam = lam.gpu();
  auto dq0 = rand_as(BF16, B * T * hq * d, rng), dk0 = rand_as(BF16, B * T * hk * d, rng),
       dv0 = rand_as(BF16, B * T * kv * dv, rng);
  auto dq = dq0, dk = dk0, dvv = dv0;
  GpuTensor gdq(BF16, {B, T, hq, d}, dq0), gdk(BF16, {B, T, hk, d}, dk0), gdv(BF16, {B, T, kv, dv}, dv0),
      gdO(BF16, {B, T, heads, dv}, dO);
  ops::attention_block_backward(maps, host(dq, {B, T, hq, d}), host(dk, {B, T, hk, d}), host(dvv, {B, T, kv, dv}),
                                host(dO, {B, T, heads, dv}), &cpu_lam, cO, cL, host(q, {B, T, hq, d}),
                                host(k, {B, T, hk, d}), host(v, {B, T, kv, dv}), blk);
  ops::attention_block_backward(maps, gdq, gdk, gdv, gdO, &gpu_lam, tO, tL, gq, gk, gv, blk);
  EXPECT_TRUE(attn_grad_close(gdq.download(), dq, dq0, "block dq +=" + what));
  EXPECT_TRUE(attn_grad_close(gdk.download(), dk, dk0, "block dk +=" + what));
  EXPECT_TRUE(attn_grad_close(gdv.download(), dvv, dv0, "block dv +=" + what));
}

// Chunks of 77 rows (no multiple of any tile) with both maps counts and both block
// kinds; then chunks of 20 (less than one tile) and 33, GQA ratios 4 and 1, head
// size 128, each kind and maps count once.
TEST(CudaAttentionBlocks, BlockForwardAndBackwardMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2003);
  for (int maps : {1, 2})
    for (bool causal : {false, true}) check_block({77, 64, 4, 2}, maps, causal, rng);
  check_block({20, 128, 4, 1}, 2, true, rng);
  check_block({20, 128, 4, 1}, 1, false, rng);
  check_block({33, 128, 2, 2}, 2, false, rng);
  check_block({33, 64, 2, 2}, 1, true, rng);
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

// diff_lambda, diff_lambda_into: a d-term dot (double on both sides) and exps rounded
// to fp32, 1e-6 of the terms' size; on one device both give the same bits.
// Forward: RMSNorm of o1 − λ·o2 from exact bf16 inputs in fp32; out (bf16) one
// rounding (atol 1e-3 of the scale, rtol 2e-2), rstd (f32) 1e-5. Backward: dpre (bf16,
// overwritten) likewise; dg_sub (f32 +=) sums over B·T·H rows, 1e-5 of the scale.
// The λ vectors' gradients (+=) are dλ·e^(λq·λk)·(a λ vector), with dλ = −Σ dpre·o2
// over every element accumulated in double from fp32 terms: 1e-5 of Σ|dpre·o2| times
// the factor, plus 1e-6 of the result for the fp32 products and the add.
void check_combine(int64_t T, int64_t H, int64_t d, std::mt19937& rng) {
  const int64_t w = 2 * d, n = B * T * H * w;
  const float eps = 1e-5f;
  const std::string what = " T=" + std::to_string(T) + " H=" + std::to_string(H) + " d=" + std::to_string(d);
  LambdaVectors lam(d, float(0.8 - 0.6 * std::exp(-0.3 * 2.0)), rng);
  const ops::DiffLambda cpu_lam = lam.cpu(), gpu_lam = lam.gpu();
  double dots = 0;
  for (int64_t i = 0; i < d; ++i) dots += std::fabs(lam.v[0][i] * lam.v[1][i]) + std::fabs(lam.v[2][i] * lam.v[3][i]);
  const float lambda = ops::diff_lambda(cpu_lam);
  const double lambda_tol = 1e-6 * (std::exp(dots) * 2 + lam.lambda_init);
  EXPECT_NEAR(ops::diff_lambda(gpu_lam), lambda, lambda_tol) << "diff_lambda" << what;
  std::vector<float> into = {123.f};
  GpuTensor ginto(F32, {1});
  ginto.poison();
  ops::diff_lambda_into(host(into, {1}), cpu_lam);
  ops::diff_lambda_into(ginto, gpu_lam);
  EXPECT_EQ(into[0], lambda) << "diff_lambda_into on the cpu" << what;
  EXPECT_EQ(ginto.download()[0], ops::diff_lambda(gpu_lam)) << "diff_lambda_into on the gpu" << what;

  auto o1 = rand_as(BF16, n, rng), o2 = rand_as(BF16, n, rng), dout = rand_as(BF16, n, rng);
  auto g_sub = randn(size_t(w), rng, 0.3, 1.0);
  std::vector<float> out(size_t(n), 123.f), rstd(size_t(B * T * H), 123.f);
  GpuTensor go1(BF16, {B, T, H, w}, o1), go2(BF16, {B, T, H, w}, o2), gg(F32, {w}, g_sub), gout(BF16, {B, T, H, w}),
      grstd(F32, {B, T, H});
  gout.poison();
  grstd.poison();
  ops::diff_combine_forward(host(out, {B, T, H, w}), host(rstd, {B, T, H}), host(o1, {B, T, H, w}),
                            host(o2, {B, T, H, w}), cpu_lam, host(g_sub, {w}), eps);
  ops::diff_combine_forward(gout, grstd, go1, go2, gpu_lam, gg, eps);
  EXPECT_TRUE(close_to(gout.download(), out, {1e-3, 2e-2}, "combine out" + what));
  EXPECT_TRUE(close_to(grstd.download(), rstd, {1e-5, 1e-5}, "combine rstd" + what));

  const std::vector<float> dg0 = randn(size_t(w), rng), dl0 = randn(size_t(d), rng);
  std::vector<float> dpre(size_t(n), 123.f), dg = dg0, dl[4] = {dl0, dl0, dl0, dl0};
  GpuTensor gdpre(BF16, {B, T, H, w}), gdg(F32, {w}, dg0), gdout(BF16, {B, T, H, w}, dout),
      grstd_in(F32, {B, T, H}, rstd);
  GpuTensor gdl[4] = {{F32, {d}, dl0}, {F32, {d}, dl0}, {F32, {d}, dl0}, {F32, {d}, dl0}};
  gdpre.poison();
  ops::diff_combine_backward(host(dpre, {B, T, H, w}), host(dg, {w}),
                             {host(dl[0], {d}), host(dl[1], {d}), host(dl[2], {d}), host(dl[3], {d})},
                             host(dout, {B, T, H, w}), host(o1, {B, T, H, w}), host(o2, {B, T, H, w}),
                             host(rstd, {B, T, H}), cpu_lam, host(g_sub, {w}));
  ops::diff_combine_backward(gdpre, gdg, {gdl[0], gdl[1], gdl[2], gdl[3]}, gdout, go1, go2, grstd_in, gpu_lam, gg);
  EXPECT_TRUE(close_to(gdpre.download(), dpre, {1e-3, 2e-2}, "combine dpre" + what));
  EXPECT_TRUE(close_to(gdg.download(), dg, {1e-5, 1e-5}, "combine dg_sub +=" + what));
  double terms = 0;
  for (int64_t i = 0; i < n; ++i) terms += std::fabs(double(dpre[size_t(i)]) * o2[size_t(i)]);
  const double factor = std::exp(dots) * std::max({max_abs(lam.v[0]), max_abs(lam.v[1]), max_abs(lam.v[2]),
                                                   max_abs(lam.v[3])});
  for (int j = 0; j < 4; ++j)
    EXPECT_TRUE(near_all(gdl[j].download(), dl[j], 1e-5 * terms * factor + 1e-6 * max_abs(dl[j]), 1e-6,
                         "combine λ vector " + std::to_string(j) + " +=" + what));
}

// One row block and many (rows not a multiple of the 8 rows a block takes), head
// sizes 64 and 128.
TEST(CudaAttentionBlocks, DiffCombineAndLambdaMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2005);
  check_combine(1, 3, 64, rng);
  check_combine(77, 4, 64, rng);
  check_combine(33, 2, 128, rng);
}

}  // namespace
