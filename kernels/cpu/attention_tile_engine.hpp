// The tiled online-softmax engine behind both attention kinds on the CPU.
//
// A "problem" is one (sequence, query head): M softmax maps (1 for standard
// attention, 2 for differential attention) that share one V. Queries are
// processed in tiles of kBq rows against key tiles of kBk rows; the score
// blocks are kBq×kBk, so memory beyond inputs and outputs is O(T), and every
// product is an OpenBLAS GEMM on strided views (no copies). Each V tile (and in
// the backward each dO·Vᵀ product) is computed once and shared by the M maps.
#pragma once
#include "core/tensor.hpp"
#include "kernels/ops.hpp"

namespace dt::ops::tiles {

constexpr int kBq = 64;   // query rows per tile
constexpr int kBk = 256;  // key rows per tile

struct Problem {
  int M = 1;          // maps sharing V
  int T = 0, d = 0, dv = 0;
  // Keys: causal = the keys are the queries' own positions (row j visible to
  // query row i when j ≤ i); otherwise all Tk key rows are visible.
  bool causal = true;
  int Tk = 0;
  float scale = 1.f;  // 1/sqrt(d)
  const float* q[2] = {nullptr, nullptr};  // row i of map m: q[m] + i·ldq, d wide
  const float* k[2] = {nullptr, nullptr};  // row j of map m: k[m] + j·ldk
  const float* v = nullptr;                // row j: v + j·ldv, dv wide
  int ldq = 0, ldk = 0, ldv = 0;
};

// Query rows [i0, i1): out[m] (rows ldo apart) = softmax_m(QKᵀ·scale, causal)·V,
// normalised; lse[m][i] = log Σ_j exp(s_ij) (stride 1 over i).
void forward(const Problem& p, int i0, int i1, float* const out[2], int ldo, float* const lse[2]);

// Backward for query rows [i0, i1). The output gradient of map m is dscale[m]·dO
// (one dO shared by the maps). O[m] are the normalised forward outputs.
// dq[m] rows [i0, i1), dk[m] and dv rows are all accumulated (+=).
void backward(const Problem& p, int i0, int i1, const float* dO, int lddo, const float dscale[2],
              const float* const O[2], int ldo, const float* const lse[2], float* const dq[2],
              int lddq, float* const dk[2], int lddk, float* dv, int lddv);

// The heads of one attention call: q (B,Tq,heads·maps,d), k (B,Tk,kv·maps,d),
// v (B,Tk,kv,dv); map m of head h uses query sub-head h·maps+m and key
// sub-head g·maps+m of kv head g = h / (heads/kv). Checked on construction
// (one line naming the op and the shapes).
struct Heads {
  int B, Tq, Tk, heads, kv, d, dv, maps;
};
Heads heads_of(int maps, const Tensor& q, const Tensor& k, const Tensor& v, const char* op);
// The problem of head h of sequence b over the rows and keys of blk.
Problem head_problem(const Heads& s, const float* q, const float* k, const float* v, int b, int h,
                     const AttnBlock& blk);
// The whole causal sequence (Tq == Tk): blk = {0, Tq, 0, Tq, causal}.
Problem head_problem(const Heads& s, const float* q, const float* k, const float* v, int b, int h);

}  // namespace dt::ops::tiles
