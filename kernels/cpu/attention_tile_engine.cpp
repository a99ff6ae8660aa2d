#include "kernels/cpu/attention_tile_engine.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/cpu_common.hpp"

namespace dt::ops::tiles {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// S (nq×nk, ld kBk) = scale · Q[i0:i0+nq] · K[j0:j0+nk]ᵀ, with the causal mask.
void scores(const Problem& p, int m, int i0, int nq, int j0, int nk, float* S) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, p.d, p.scale, p.q[m] + size_t(i0) * p.ldq,
              p.ldq, p.k[m] + size_t(j0) * p.ldk, p.ldk, 0.f, S, kBk);
  if (p.causal && j0 + nk - 1 > i0) {  // the tile crosses the diagonal
    for (int r = 0; r < nq; ++r) {
      const int first_masked = i0 + r + 1 - j0;
      for (int c = std::max(first_masked, 0); c < nk; ++c) S[r * kBk + c] = kNegInf;
    }
  }
}

}  // namespace

void forward(const Problem& p, int i0, int i1, float* const out[2], int ldo, float* const lse[2]) {
  const int nq = i1 - i0;
  float* S = thread_scratch(0, size_t(p.M) * kBq * kBk);
  float* stats = thread_scratch(1, size_t(p.M) * 2 * kBq);  // running max, running sum
  for (int m = 0; m < p.M; ++m) {
    float* mx = stats + m * 2 * kBq;
    float* sum = mx + kBq;
    std::fill(mx, mx + nq, kNegInf);
    std::fill(sum, sum + nq, 0.f);
    for (int r = 0; r < nq; ++r) std::memset(out[m] + size_t(i0 + r) * ldo, 0, sizeof(float) * p.dv);
  }
  const int kend = p.causal ? i1 : p.Tk;
  for (int j0 = 0; j0 < kend; j0 += kBk) {
    const int nk = std::min(kBk, kend - j0);
    for (int m = 0; m < p.M; ++m) {
      float* Sm = S + size_t(m) * kBq * kBk;
      float* mx = stats + m * 2 * kBq;
      float* sum = mx + kBq;
      scores(p, m, i0, nq, j0, nk, Sm);
      for (int r = 0; r < nq; ++r) {
        float* s = Sm + r * kBk;
        float tile_max = kNegInf;
        for (int c = 0; c < nk; ++c) tile_max = std::max(tile_max, s[c]);
        const float new_max = std::max(mx[r], tile_max);
        // Row r always sees key 0 in the first tile (causal: key 0 precedes
        // every query; a visible block: every key), so new_max is finite.
        const float corr = std::exp(mx[r] - new_max);
        float tile_sum = 0.f;
        for (int c = 0; c < nk; ++c) {
          s[c] = std::exp(s[c] - new_max);
          tile_sum += s[c];
        }
        sum[r] = sum[r] * corr + tile_sum;
        mx[r] = new_max;
        if (corr != 1.f) {
          float* o = out[m] + size_t(i0 + r) * ldo;
          for (int c = 0; c < p.dv; ++c) o[c] *= corr;
        }
      }
    }
    // The V tile is loaded once (it stays in cache) and used by every map.
    for (int m = 0; m < p.M; ++m)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, p.dv, nk, 1.f, S + size_t(m) * kBq * kBk, kBk,
                  p.v + size_t(j0) * p.ldv, p.ldv, 1.f, out[m] + size_t(i0) * ldo, ldo);
  }
  for (int m = 0; m < p.M; ++m) {
    const float* mx = stats + m * 2 * kBq;
    const float* sum = mx + kBq;
    for (int r = 0; r < nq; ++r) {
      float* o = out[m] + size_t(i0 + r) * ldo;
      const float inv = 1.f / sum[r];
      for (int c = 0; c < p.dv; ++c) o[c] *= inv;
      lse[m][i0 + r] = mx[r] + std::log(sum[r]);
    }
  }
}

void backward(const Problem& p, int i0, int i1, const float* dO, int lddo, const float dscale[2],
              const float* const O[2], int ldo, const float* const lse[2], float* const dq[2],
              int lddq, float* const dk[2], int lddk, float* dv, int lddv) {
  const int nq = i1 - i0;
  const size_t tile = size_t(kBq) * kBk;
  float* P = thread_scratch(2, tile * p.M);  // probabilities of each map
  float* G = thread_scratch(3, tile);        // dO·Vᵀ, shared by the maps
  float* Pc = thread_scratch(4, tile);       // Σ_m dscale_m·P_m, for dV
  float* D = thread_scratch(5, size_t(p.M) * kBq);
  // D_m[i] = dO_m[i]·O_m[i] = dscale_m · (dO[i]·O_m[i])
  for (int m = 0; m < p.M; ++m) {
    for (int r = 0; r < nq; ++r) {
      const float* a = dO + size_t(i0 + r) * lddo;
      const float* b = O[m] + size_t(i0 + r) * ldo;
      float s = 0.f;
      for (int c = 0; c < p.dv; ++c) s += a[c] * b[c];
      D[m * kBq + r] = dscale[m] * s;
    }
  }
  const int kend = p.causal ? i1 : p.Tk;
  for (int j0 = 0; j0 < kend; j0 += kBk) {
    const int nk = std::min(kBk, kend - j0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, p.dv, 1.f, dO + size_t(i0) * lddo, lddo,
                p.v + size_t(j0) * p.ldv, p.ldv, 0.f, G, kBk);
    for (int m = 0; m < p.M; ++m) {
      float* Pm = P + tile * m;
      scores(p, m, i0, nq, j0, nk, Pm);
      const float* lm = lse[m];
      for (int r = 0; r < nq; ++r) {
        float* s = Pm + r * kBk;
        const float l = lm[i0 + r];
        float* pc = Pc + r * kBk;
        for (int c = 0; c < nk; ++c) {
          s[c] = std::exp(s[c] - l);  // masked entries: exp(−inf) = 0
          pc[c] = (m == 0 ? 0.f : pc[c]) + dscale[m] * s[c];
        }
      }
    }
    // dV[j] += Σ_m dscale_m·P_mᵀ·dO
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, p.dv, nq, 1.f, Pc, kBk, dO + size_t(i0) * lddo,
                lddo, 1.f, dv + size_t(j0) * lddv, lddv);
    for (int m = 0; m < p.M; ++m) {
      float* Pm = P + tile * m;  // becomes dS_m = P_m ∘ (dscale_m·G − D_m)
      for (int r = 0; r < nq; ++r) {
        float* s = Pm + r * kBk;
        const float* g = G + r * kBk;
        const float dr = D[m * kBq + r];
        for (int c = 0; c < nk; ++c) s[c] = s[c] * (dscale[m] * g[c] - dr);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, p.d, nk, p.scale, Pm, kBk,
                  p.k[m] + size_t(j0) * p.ldk, p.ldk, 1.f, dq[m] + size_t(i0) * lddq, lddq);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, p.d, nq, p.scale, Pm, kBk,
                  p.q[m] + size_t(i0) * p.ldq, p.ldq, 1.f, dk[m] + size_t(j0) * lddk, lddk);
    }
  }
}

Heads heads_of(int maps, const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  require_cpu(q, op);
  DT_CHECK(maps == 1 || maps == 2, op, ": maps must be 1 or 2");
  DT_CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, op, " expects (B,T,heads,dim) tensors");
  DT_CHECK(q.dim(2) % maps == 0 && k.dim(2) % maps == 0, op, ": q and k need ", maps, " sub-heads per head");
  Heads s{int(q.dim(0)), int(q.dim(1)), int(k.dim(1)), int(q.dim(2)) / maps, int(k.dim(2)) / maps,
          int(q.dim(3)), int(v.dim(3)), maps};
  DT_CHECK(k.dim(0) == s.B && v.dim(0) == s.B && v.dim(1) == s.Tk && v.dim(2) == s.kv && k.dim(3) == s.d &&
               s.heads % s.kv == 0,
           op, ": q ", q.shape_str(), " k ", k.shape_str(), " v ", v.shape_str());
  return s;
}

Problem head_problem(const Heads& s, const float* q, const float* k, const float* v, int b, int h,
                     const AttnBlock& blk) {
  const int g = h / (s.heads / s.kv);
  Problem p;
  p.M = s.maps;
  p.T = blk.nq, p.d = s.d, p.dv = s.dv;
  p.causal = blk.causal;
  p.Tk = blk.nk;
  p.scale = 1.f / std::sqrt(float(s.d));
  p.ldq = s.heads * s.maps * s.d, p.ldk = s.kv * s.maps * s.d, p.ldv = s.kv * s.dv;
  for (int m = 0; m < s.maps; ++m) {
    p.q[m] = q + ((size_t(b) * s.Tq + blk.q0) * s.heads * s.maps + size_t(h) * s.maps + m) * s.d;
    p.k[m] = k + ((size_t(b) * s.Tk + blk.k0) * s.kv * s.maps + size_t(g) * s.maps + m) * s.d;
  }
  p.v = v + ((size_t(b) * s.Tk + blk.k0) * s.kv + g) * s.dv;
  return p;
}

Problem head_problem(const Heads& s, const float* q, const float* k, const float* v, int b, int h) {
  return head_problem(s, q, k, v, b, h, {0, s.Tq, 0, s.Tq, true});
}

}  // namespace dt::ops::tiles
