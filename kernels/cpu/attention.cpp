// Standard causal attention (the baseline) on the shared tile engine.
#include <cstring>

#include "kernels/cpu/attention_tile_engine.hpp"
#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

namespace {

// Every head's query rows against its own keys (causal); grouped-query heads.
tiles::Heads check_dims(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  const tiles::Heads s = tiles::heads_of(1, q, k, v, op);
  DT_CHECK(s.Tk == s.Tq, op, ": q ", q.shape_str(), " and k ", k.shape_str(), " cover different positions");
  return s;
}

}  // namespace

void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v) {
  DT_ON_CUDA(q, attention_forward(out, lse, q, k, v));
  const tiles::Heads s = check_dims(q, k, v, "attention_forward");
  DT_CHECK(out.numel() == int64_t(s.B) * s.Tq * s.heads * s.dv && lse.numel() == int64_t(s.B) * s.heads * s.Tq);
  const int ntiles = (s.Tq + tiles::kBq - 1) / tiles::kBq;
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32();
  float *op = out.f32(), *lp = lse.f32();
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.heads; ++h)
      for (int t = 0; t < ntiles; ++t) {
        const tiles::Problem p = tiles::head_problem(s, qp, kp, vp, b, h);
        float* o[2] = {op + (size_t(b) * s.Tq * s.heads + h) * s.dv, nullptr};
        float* l[2] = {lp + (size_t(b) * s.heads + h) * s.Tq, nullptr};
        const int i0 = t * tiles::kBq;
        tiles::forward(p, i0, std::min(s.Tq, i0 + tiles::kBq), o, s.heads * s.dv, l);
      }
}

void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse) {
  DT_ON_CUDA(q, attention_backward(dq, dk, dv, dout, q, k, v, out, lse));
  const tiles::Heads s = check_dims(q, k, v, "attention_backward");
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32(), *op = out.f32(), *lp = lse.f32(),
              *dop = dout.f32();
  float *dqp = dq.f32(), *dkp = dk.f32(), *dvp = dv.f32();
  const int group = s.heads / s.kv;
  // One task per (sequence, kv head): it owns that kv head's dK and dV rows.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int g = 0; g < s.kv; ++g) {
      float* dk_g = dkp + (size_t(b) * s.Tq * s.kv + g) * s.d;
      float* dv_g = dvp + (size_t(b) * s.Tq * s.kv + g) * s.dv;
      for (int t = 0; t < s.Tq; ++t) {
        std::memset(dk_g + size_t(t) * s.kv * s.d, 0, sizeof(float) * s.d);
        std::memset(dv_g + size_t(t) * s.kv * s.dv, 0, sizeof(float) * s.dv);
        for (int h = g * group; h < (g + 1) * group; ++h)
          std::memset(dqp + ((size_t(b) * s.Tq + t) * s.heads + h) * s.d, 0, sizeof(float) * s.d);
      }
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const tiles::Problem p = tiles::head_problem(s, qp, kp, vp, b, h);
        const size_t row0 = size_t(b) * s.Tq * s.heads + h;
        const float one[2] = {1.f, 0.f};
        const float* O[2] = {op + row0 * s.dv, nullptr};
        const float* L[2] = {lp + (size_t(b) * s.heads + h) * s.Tq, nullptr};
        float* dQ[2] = {dqp + row0 * s.d, nullptr};
        float* dK[2] = {dk_g, nullptr};
        for (int i0 = 0; i0 < s.Tq; i0 += tiles::kBq)
          tiles::backward(p, i0, std::min(s.Tq, i0 + tiles::kBq), dop + row0 * s.dv, s.heads * s.dv, one, O,
                          s.heads * s.dv, L, dQ, s.heads * s.d, dK, s.kv * s.d, dv_g, s.kv * s.dv);
      }
    }
}

}  // namespace dt::ops
