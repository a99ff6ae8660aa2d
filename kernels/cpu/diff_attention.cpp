// Differential attention (DESIGN §2) on the shared tile engine: both softmax
// maps of a differential head go through one pass over each K/V tile, then
//   out = RMSNorm(o1 − λ·o2; g_sub) · (1 − λ_init).
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_tile_engine.hpp"
#include "kernels/cpu/cpu_common.hpp"
#include "kernels/cpu/diff_combine.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

namespace {

// Differential heads: two sub-heads of q and k per head, V of 2d (DESIGN §2).
tiles::Heads check_dims(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  const tiles::Heads s = tiles::heads_of(2, q, k, v, op);
  DT_CHECK(s.Tk == s.Tq && s.dv == 2 * s.d, op, " v ", v.shape_str(), " expected (B,T,KV,2d) over q's positions");
  return s;
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a.f32()[i]) * b.f32()[i];
  return s;
}

}  // namespace

float diff_lambda(const DiffLambda& lam) {
  DT_ON_CUDA(lam.q1, diff_lambda(lam));
  return float(std::exp(dot(lam.q1, lam.k1)) - std::exp(dot(lam.q2, lam.k2)) + lam.lambda_init);
}

void diff_lambda_into(Tensor out, const DiffLambda& lam) {
  DT_ON_CUDA(lam.q1, diff_lambda_into(out, lam));
  require_cpu(out, "diff_lambda_into");
  DT_CHECK(out.dtype == DType::F32 && out.numel() == 1, "diff_lambda_into: out must be one f32, got ",
           dtype_name(out.dtype), " ", out.shape_str());
  out.f32()[0] = diff_lambda(lam);
}

void diff_attention_forward(Tensor out, const DiffAttnCache& cache, Tensor q, Tensor k, Tensor v,
                            const DiffLambda& lam, Tensor g_sub, float eps) {
  DT_ON_CUDA(q, diff_attention_forward(out, cache, q, k, v, lam, g_sub, eps));
  const tiles::Heads s = check_dims(q, k, v, "diff_attention_forward");
  const int dv = 2 * s.d;
  DT_CHECK(out.numel() == int64_t(s.B) * s.Tq * s.heads * dv && g_sub.numel() == dv);
  DT_CHECK(cache.o1.numel() == out.numel() && cache.o2.numel() == out.numel());
  DT_CHECK(cache.lse1.numel() == int64_t(s.B) * s.heads * s.Tq && cache.rstd.numel() == int64_t(s.B) * s.Tq * s.heads);
  const float lambda = diff_lambda(lam);
  const float post = 1.f - lam.lambda_init;
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32(), *gp = g_sub.f32();
  float *op = out.f32(), *o1 = cache.o1.f32(), *o2 = cache.o2.f32(), *l1 = cache.lse1.f32(),
        *l2 = cache.lse2.f32(), *rs = cache.rstd.f32();
  const int ntiles = (s.Tq + tiles::kBq - 1) / tiles::kBq;
  const int ld = s.heads * dv;
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.heads; ++h)
      for (int t = 0; t < ntiles; ++t) {
        const tiles::Problem p = tiles::head_problem(s, qp, kp, vp, b, h);
        const size_t row0 = size_t(b) * s.Tq * s.heads + h;  // (b, t=0, h) in (B,T,H,·) tensors
        float* O[2] = {o1 + row0 * dv, o2 + row0 * dv};
        float* L[2] = {l1 + (size_t(b) * s.heads + h) * s.Tq, l2 + (size_t(b) * s.heads + h) * s.Tq};
        const int i0 = t * tiles::kBq, i1 = std::min(s.Tq, i0 + tiles::kBq);
        tiles::forward(p, i0, i1, O, ld, L);
        // Epilogue on each row: the difference, the per-head RMSNorm and the scale.
        for (int i = i0; i < i1; ++i)
          rs[row0 + size_t(i) * s.heads] = combine_row_forward(op + (row0 + size_t(i) * s.heads) * dv, O[0] + size_t(i) * ld,
                                                           O[1] + size_t(i) * ld, lambda, gp, post, dv, eps);
      }
}

void diff_attention_backward(Tensor dq, Tensor dk, Tensor dv, const DiffLambdaGrads& dlam, Tensor dg_sub,
                             Tensor dout, Tensor q, Tensor k, Tensor v, const DiffLambda& lam,
                             Tensor g_sub, const DiffAttnCache& cache, float eps) {
  DT_ON_CUDA(q, diff_attention_backward(dq, dk, dv, dlam, dg_sub, dout, q, k, v, lam, g_sub, cache, eps));
  (void)eps;  // the saved rstd already holds it
  const tiles::Heads s = check_dims(q, k, v, "diff_attention_backward");
  const int d = s.d, dvw = 2 * s.d, ld = s.heads * dvw, group = s.heads / s.kv;
  const float lambda = diff_lambda(lam);
  const float post = 1.f - lam.lambda_init;
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32(), *gp = g_sub.f32(), *dop = dout.f32();
  const float *o1 = cache.o1.f32(), *o2 = cache.o2.f32(), *l1 = cache.lse1.f32(), *l2 = cache.lse2.f32(),
              *rs = cache.rstd.f32();
  float *dqp = dq.f32(), *dkp = dk.f32(), *dvp = dv.f32();
  // Per-task partial sums of dg_sub (2d) and dλ (1), added in task order after
  // the loop so the result does not depend on scheduling.
  const int ntasks = s.B * s.kv;
  static std::vector<double> partial;
  partial.assign(size_t(ntasks) * (dvw + 1), 0.0);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int g = 0; g < s.kv; ++g) {
      double* part = partial.data() + size_t(b * s.kv + g) * (dvw + 1);
      float* dk_g[2] = {dkp + (size_t(b) * s.Tq * 2 * s.kv + 2 * g) * d,
                        dkp + (size_t(b) * s.Tq * 2 * s.kv + 2 * g + 1) * d};
      float* dv_g = dvp + (size_t(b) * s.Tq * s.kv + g) * dvw;
      for (int t = 0; t < s.Tq; ++t) {
        std::memset(dk_g[0] + size_t(t) * 2 * s.kv * d, 0, sizeof(float) * 2 * d);  // both sub-heads
        std::memset(dv_g + size_t(t) * s.kv * dvw, 0, sizeof(float) * dvw);
        for (int h = g * group; h < (g + 1) * group; ++h)  // this group's dq rows, both sub-heads
          std::memset(dqp + ((size_t(b) * s.Tq + t) * 2 * s.heads + 2 * h) * d, 0, sizeof(float) * 2 * d);
      }
      float* dpre = thread_scratch(6, size_t(tiles::kBq) * dvw);  // d(o1 − λ·o2) for one tile
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const tiles::Problem p = tiles::head_problem(s, qp, kp, vp, b, h);
        const size_t row0 = size_t(b) * s.Tq * s.heads + h;
        const float* O[2] = {o1 + row0 * dvw, o2 + row0 * dvw};
        const float* L[2] = {l1 + (size_t(b) * s.heads + h) * s.Tq, l2 + (size_t(b) * s.heads + h) * s.Tq};
        float* dQ[2] = {dqp + (size_t(b) * s.Tq * 2 * s.heads + 2 * h) * d,
                        dqp + (size_t(b) * s.Tq * 2 * s.heads + 2 * h + 1) * d};
        for (int i0 = 0; i0 < s.Tq; i0 += tiles::kBq) {
          const int i1 = std::min(s.Tq, i0 + tiles::kBq);
          // RMSNorm backward per row, with x = o1 − λ·o2 recomputed and gain g_sub·(1−λ_init).
          for (int i = i0; i < i1; ++i)
            part[dvw] += combine_row_backward(dpre + size_t(i - i0) * dvw, part, dop + (row0 + size_t(i) * s.heads) * dvw,
                                              O[0] + size_t(i) * ld, O[1] + size_t(i) * ld, rs[row0 + size_t(i) * s.heads],
                                              lambda, gp, post, dvw);
          const float dscale[2] = {1.f, -lambda};
          tiles::backward(p, i0, i1, dpre - size_t(i0) * dvw, dvw, dscale, O, ld, L, dQ, 2 * s.heads * d, dk_g,
                          2 * s.kv * d, dv_g, s.kv * dvw);
        }
      }
    }
  static std::vector<double> sum;
  sum.assign(dvw + 1, 0.0);
  for (int t = 0; t < ntasks; ++t)
    for (int j = 0; j <= dvw; ++j) sum[j] += partial[size_t(t) * (dvw + 1) + j];
  float* dgs = dg_sub.f32();
  for (int j = 0; j < dvw; ++j) dgs[j] += float(sum[j]);
  add_lambda_vector_grads(dlam, lam, sum[dvw]);
}

// λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init
void add_lambda_vector_grads(const DiffLambdaGrads& dlam, const DiffLambda& lam, double dlambda) {
  const int64_t d = lam.q1.numel();
  const double e1 = std::exp(dot(lam.q1, lam.k1)), e2 = std::exp(dot(lam.q2, lam.k2));
  for (int64_t j = 0; j < d; ++j) {
    dlam.q1.f32()[j] += float(dlambda * e1 * lam.k1.f32()[j]);
    dlam.k1.f32()[j] += float(dlambda * e1 * lam.q1.f32()[j]);
    dlam.q2.f32()[j] -= float(dlambda * e2 * lam.k2.f32()[j]);
    dlam.k2.f32()[j] -= float(dlambda * e2 * lam.q2.f32()[j]);
  }
}

}  // namespace dt::ops
