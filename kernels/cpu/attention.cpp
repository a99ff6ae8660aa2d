// Standard causal attention (the baseline) on the shared tile engine.
#include <cstring>

#include "kernels/cpu/attention_tile_engine.hpp"
#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

namespace {

struct Dims {
  int B, T, Hq, Hkv, d, dv;
};

Dims check_dims(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  require_cpu(q, op);
  DT_CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, op, " expects (B,T,heads,dim) tensors");
  Dims s{int(q.dim(0)), int(q.dim(1)), int(q.dim(2)), int(k.dim(2)), int(q.dim(3)), int(v.dim(3))};
  DT_CHECK(k.dim(0) == s.B && k.dim(1) == s.T && k.dim(3) == s.d, op, " k ", k.shape_str(), " q ", q.shape_str());
  DT_CHECK(v.dim(0) == s.B && v.dim(1) == s.T && v.dim(2) == s.Hkv, op, " v ", v.shape_str());
  DT_CHECK(s.Hq % s.Hkv == 0, op, ": query heads ", s.Hq, " not a multiple of kv heads ", s.Hkv);
  return s;
}

tiles::Problem problem(const Dims& s, const float* q, const float* k, const float* v, int b, int h) {
  const int g = h / (s.Hq / s.Hkv);
  tiles::Problem p;
  p.M = 1;
  p.T = s.T, p.d = s.d, p.dv = s.dv;
  p.scale = 1.f / std::sqrt(float(s.d));
  p.ldq = s.Hq * s.d, p.ldk = s.Hkv * s.d, p.ldv = s.Hkv * s.dv;
  p.q[0] = q + (size_t(b) * s.T * s.Hq + h) * s.d;
  p.k[0] = k + (size_t(b) * s.T * s.Hkv + g) * s.d;
  p.v = v + (size_t(b) * s.T * s.Hkv + g) * s.dv;
  return p;
}

}  // namespace

void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v) {
  DT_ON_CUDA(q, attention_forward(out, lse, q, k, v));
  const Dims s = check_dims(q, k, v, "attention_forward");
  DT_CHECK(out.numel() == int64_t(s.B) * s.T * s.Hq * s.dv && lse.numel() == int64_t(s.B) * s.Hq * s.T);
  const int ntiles = (s.T + tiles::kBq - 1) / tiles::kBq;
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32();
  float *op = out.f32(), *lp = lse.f32();
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int t = 0; t < ntiles; ++t) {
        const tiles::Problem p = problem(s, qp, kp, vp, b, h);
        float* o[2] = {op + (size_t(b) * s.T * s.Hq + h) * s.dv, nullptr};
        float* l[2] = {lp + (size_t(b) * s.Hq + h) * s.T, nullptr};
        const int i0 = t * tiles::kBq;
        tiles::forward(p, i0, std::min(s.T, i0 + tiles::kBq), o, s.Hq * s.dv, l);
      }
}

void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse) {
  DT_ON_CUDA(q, attention_backward(dq, dk, dv, dout, q, k, v, out, lse));
  const Dims s = check_dims(q, k, v, "attention_backward");
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32(), *op = out.f32(), *lp = lse.f32(),
              *dop = dout.f32();
  float *dqp = dq.f32(), *dkp = dk.f32(), *dvp = dv.f32();
  const int group = s.Hq / s.Hkv;
  // One task per (sequence, kv head): it owns that kv head's dK and dV rows.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int g = 0; g < s.Hkv; ++g) {
      float* dk_g = dkp + (size_t(b) * s.T * s.Hkv + g) * s.d;
      float* dv_g = dvp + (size_t(b) * s.T * s.Hkv + g) * s.dv;
      for (int t = 0; t < s.T; ++t) {
        std::memset(dk_g + size_t(t) * s.Hkv * s.d, 0, sizeof(float) * s.d);
        std::memset(dv_g + size_t(t) * s.Hkv * s.dv, 0, sizeof(float) * s.dv);
        for (int h = g * group; h < (g + 1) * group; ++h)
          std::memset(dqp + ((size_t(b) * s.T + t) * s.Hq + h) * s.d, 0, sizeof(float) * s.d);
      }
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const tiles::Problem p = problem(s, qp, kp, vp, b, h);
        const size_t row0 = size_t(b) * s.T * s.Hq + h;
        const float one[2] = {1.f, 0.f};
        const float* O[2] = {op + row0 * s.dv, nullptr};
        const float* L[2] = {lp + (size_t(b) * s.Hq + h) * s.T, nullptr};
        float* dQ[2] = {dqp + row0 * s.d, nullptr};
        float* dK[2] = {dk_g, nullptr};
        for (int i0 = 0; i0 < s.T; i0 += tiles::kBq)
          tiles::backward(p, i0, std::min(s.T, i0 + tiles::kBq), dop + row0 * s.dv, s.Hq * s.dv, one, O,
                          s.Hq * s.dv, L, dQ, s.Hq * s.d, dK, s.Hkv * s.d, dv_g, s.Hkv * s.dv);
      }
    }
}

}  // namespace dt::ops
