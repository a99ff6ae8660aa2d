// Context-parallel building blocks (kernels/ops.hpp): block attention on the
// shared tile engine, the log-sum-exp merge, and the differential combine as
// separate passes (the single-rank path fuses them into its tiles).
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_tile_engine.hpp"
#include "kernels/cpu/cpu_common.hpp"
#include "kernels/cpu/diff_combine.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

void attention_block_forward(int maps, const Tensor out[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                             const AttnBlock& blk) {
  DT_ON_CUDA(q, attention_block_forward(maps, out, lse, q, k, v, blk));
  const tiles::Heads s = tiles::heads_of(maps, q, k, v, "attention_block_forward");
  DT_CHECK(!blk.causal || blk.nq == blk.nk, "a causal block pairs equal query and key ranges");
  const int ntiles = (blk.nq + tiles::kBq - 1) / tiles::kBq;
  const int ld = s.heads * s.dv;
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.heads; ++h)
      for (int t = 0; t < ntiles; ++t) {
        const tiles::Problem p = tiles::head_problem(s, q.f32(), k.f32(), v.f32(), b, h, blk);
        float* O[2] = {nullptr, nullptr};
        float* L[2] = {nullptr, nullptr};
        for (int m = 0; m < maps; ++m) {
          O[m] = out[m].f32() + ((size_t(b) * s.Tq + blk.q0) * s.heads + h) * s.dv;
          L[m] = lse[m].f32() + (size_t(b) * s.heads + h) * s.Tq + blk.q0;
        }
        const int i0 = t * tiles::kBq;
        tiles::forward(p, i0, std::min(blk.nq, i0 + tiles::kBq), O, ld, L);
      }
}

void attention_block_backward(int maps, Tensor dq, Tensor dk, Tensor dv, Tensor dO, const DiffLambda* lam,
                              const Tensor O[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                              const AttnBlock& blk) {
  DT_ON_CUDA(q, attention_block_backward(maps, dq, dk, dv, dO, lam, O, lse, q, k, v, blk));
  const tiles::Heads s = tiles::heads_of(maps, q, k, v, "attention_block_backward");
  DT_CHECK(maps == 1 || lam, "attention_block_backward: the differential maps need λ (lam is null)");
  // Map 2's output is scaled by −λ in the combine: its gradient is −λ·dO.
  const float dscale[2] = {1.f, maps == 2 ? -diff_lambda(*lam) : 0.f};
  const int group = s.heads / s.kv, ld = s.heads * s.dv;
  // One task per (sequence, kv head): it owns that kv head's dK and dV rows.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int g = 0; g < s.kv; ++g)
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const tiles::Problem p = tiles::head_problem(s, q.f32(), k.f32(), v.f32(), b, h, blk);
        const size_t row0 = (size_t(b) * s.Tq + blk.q0) * s.heads + h;
        const float* Om[2] = {nullptr, nullptr};
        const float* Lm[2] = {nullptr, nullptr};
        float* dQ[2] = {nullptr, nullptr};
        float* dK[2] = {nullptr, nullptr};
        for (int m = 0; m < maps; ++m) {
          Om[m] = O[m].f32() + row0 * s.dv;
          Lm[m] = lse[m].f32() + (size_t(b) * s.heads + h) * s.Tq + blk.q0;
          dQ[m] = dq.f32() + ((size_t(b) * s.Tq + blk.q0) * s.heads * maps + size_t(h) * maps + m) * s.d;
          dK[m] = dk.f32() + ((size_t(b) * s.Tk + blk.k0) * s.kv * maps + size_t(g) * maps + m) * s.d;
        }
        float* dV = dv.f32() + ((size_t(b) * s.Tk + blk.k0) * s.kv + g) * s.dv;
        for (int i0 = 0; i0 < blk.nq; i0 += tiles::kBq)
          tiles::backward(p, i0, std::min(blk.nq, i0 + tiles::kBq), dO.f32() + row0 * s.dv, ld, dscale, Om, ld, Lm,
                          dQ, s.heads * maps * s.d, dK, s.kv * maps * s.d, dV, s.kv * s.dv);
      }
}

void attention_merge(Tensor out, Tensor lse, Tensor blk_out, Tensor blk_lse, int q0, int nq) {
  DT_ON_CUDA(out, attention_merge(out, lse, blk_out, blk_lse, q0, nq));
  const int64_t B = out.dim(0), T = out.dim(1), H = out.dim(2), dv = out.dim(3);
  float *o = out.f32(), *l = lse.f32();
  const float *bo = blk_out.f32(), *bl = blk_lse.f32();
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = q0; t < q0 + nq; ++t) {
        float& la = l[(b * H + h) * T + t];
        const float lb = bl[(b * H + h) * T + t];
        float* oa = o + ((b * T + t) * H + h) * dv;
        const float* ob = bo + ((b * T + t) * H + h) * dv;
        if (lb == kNegInf) continue;
        if (la == kNegInf) {
          la = lb;
          std::memcpy(oa, ob, sizeof(float) * dv);
          continue;
        }
        const float mx = std::max(la, lb);
        const float lnew = mx + std::log(std::exp(la - mx) + std::exp(lb - mx));
        const float wa = std::exp(la - lnew), wb = std::exp(lb - lnew);
        for (int64_t c = 0; c < dv; ++c) oa[c] = oa[c] * wa + ob[c] * wb;
        la = lnew;
      }
}

void diff_combine_forward(Tensor out, Tensor rstd, Tensor o1, Tensor o2, const DiffLambda& lam, Tensor g_sub,
                          float eps) {
  DT_ON_CUDA(out, diff_combine_forward(out, rstd, o1, o2, lam, g_sub, eps));
  const int64_t rows = out.rows(), n = out.cols();
  const float lambda = diff_lambda(lam), post = 1.f - lam.lambda_init;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    rstd.f32()[r] = combine_row_forward(out.f32() + r * n, o1.f32() + r * n, o2.f32() + r * n, lambda, g_sub.f32(),
                                        post, int(n), eps);
}

void diff_combine_backward(Tensor dpre, Tensor dg_sub, const DiffLambdaGrads& dlam, Tensor dout, Tensor o1,
                           Tensor o2, Tensor rstd, const DiffLambda& lam, Tensor g_sub) {
  DT_ON_CUDA(dpre, diff_combine_backward(dpre, dg_sub, dlam, dout, o1, o2, rstd, lam, g_sub));
  const int64_t rows = dout.rows(), n = dout.cols();
  const float lambda = diff_lambda(lam), post = 1.f - lam.lambda_init;
  // Per-thread partials of dg_sub and dλ, summed in thread order (deterministic).
  const int nt = omp_get_max_threads();
  static std::vector<double> partial;
  partial.assign(size_t(nt) * (n + 1), 0.0);
#pragma omp parallel num_threads(nt)
  {
    double* part = partial.data() + size_t(omp_get_thread_num()) * (n + 1);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      part[n] += combine_row_backward(dpre.f32() + r * n, part, dout.f32() + r * n, o1.f32() + r * n,
                                      o2.f32() + r * n, rstd.f32()[r], lambda, g_sub.f32(), post, int(n));
  }
  double dl = 0;
  for (int t = 0; t < nt; ++t) {
    for (int64_t j = 0; j < n; ++j) dg_sub.f32()[j] += float(partial[size_t(t) * (n + 1) + j]);
    dl += partial[size_t(t) * (n + 1) + n];
  }
  add_lambda_vector_grads(dlam, lam, dl);
}

}  // namespace dt::ops
