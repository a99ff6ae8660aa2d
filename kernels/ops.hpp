// Every op the model calls, declared once. Each runs on its tensors' device:
// kernels/cpu/*.cpp implement them in fp32 (OpenBLAS + OpenMP); an op whose
// tensors are on a CUDA device runs kernels/cuda/*.cu instead
// (kernels/cuda/cuda_ops.hpp states the dtypes each CUDA op accepts).
//
// Conventions: shapes in the comment beside each argument; "+=" marks outputs
// that are accumulated into (gradients of weights, the residual stream's
// gradient); every other output is overwritten.
#pragma once
#include <cstdint>

#include "core/tensor.hpp"

namespace dt::ops {

// ---- determinism ---------------------------------------------------------------------
// Whether backward ops reduce in a fixed order (the default, runtime.deterministic:
// true), so a step repeats bit for bit (DESIGN §6: exact resume). false lets the CUDA
// backward accumulate dQ, the embedding gradient, dg_sub and dλ with float atomics,
// whose summation order varies from run to run. The CPU ops are always deterministic.
// Process-wide; the trainer sets it from the config before the first step.
void set_deterministic(bool on);
bool deterministic();

// ---- tensors ---------------------------------------------------------------------
// dst = src elementwise (same numel). Between devices the dtypes must match;
// on one CUDA device f32 ↔ bf16 converts (round to nearest even).
void copy(Tensor dst, Tensor src);
void fill_zero(Tensor t);
// every element of an f32 tensor = value
void fill(Tensor t, float value);

// ---- GEMM -------------------------------------------------------------------
// C = alpha · op(A) · op(B) + beta · C on the 2-D views [rows, cols] of A, B, C.
void matmul(Tensor C, Tensor A, bool trans_a, Tensor B, bool trans_b, float alpha = 1.f,
            float beta = 0.f);

// y (N,out) = x (N,in) · W (out,in)ᵀ
void linear_forward(Tensor y, Tensor x, Tensor W);
// out (N,out) = base (N,out) + x (N,in) · W (out,in)ᵀ: the residual add done by the
// GEMM (on CUDA, cuBLASLt reads C = base and writes D = out, so no copy pass).
// An undefined base means zero.
void linear_residual_forward(Tensor out, Tensor base, Tensor x, Tensor W);
// dx (N,in) = dy · W  (or += when accumulate_dx); dW (out,in) += dyᵀ · x
void linear_backward(Tensor dx, Tensor dW, Tensor dy, Tensor x, Tensor W, bool accumulate_dx);

// ---- embedding -------------------------------------------------------------------
// out (N,D) = E[tokens]; tokens (N) i32, E (V,D)
void embedding_forward(Tensor out, Tensor tokens, Tensor E);
// dE (V,D) += scatter of dout (N,D) by tokens
void embedding_backward(Tensor dE, Tensor tokens, Tensor dout);
// Vocab-parallel: E holds rows [v0, v0 + E.rows()) of a vocabulary of vocab_total;
// rows of other tokens are zero in out and skipped in dE. Tokens outside
// [0, vocab_total) are an error.
void embedding_forward_shard(Tensor out, Tensor tokens, Tensor E, int64_t v0, int64_t vocab_total);
void embedding_backward_shard(Tensor dE, Tensor tokens, Tensor dout, int64_t v0);

// ---- RMSNorm: out = x · rsqrt(mean(x²) + eps) · g ---------------------------------
// x, out (N,C); g (C); rstd (N) saved for the backward
void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor g, float eps);
// dx (N,C) +=; dg (C) +=
void rmsnorm_backward(Tensor dx, Tensor dg, Tensor dout, Tensor x, Tensor g, Tensor rstd);

// ---- RoPE, interleaved pairs (2i, 2i+1) rotated by pos·θ^(−2i/d) ---------------------
// table (T, d): [cos, sin] of each pair for positions pos0 .. pos0+T−1
void rope_table(Tensor table, double theta, int64_t pos0);
// x (B,T,nh,d) rotated in place; the backward rotates dx by the opposite angle
void rope_forward(Tensor x, Tensor table);
void rope_backward(Tensor dx, Tensor table);

// ---- SwiGLU: out = silu(a) · b -----------------------------------------------------
// a, b, out (N,F)
void swiglu_forward(Tensor out, Tensor a, Tensor b);
// da, db (N,F) overwritten
void swiglu_backward(Tensor da, Tensor db, Tensor dout, Tensor a, Tensor b);

// ---- cross-entropy, fused with its gradient ---------------------------------------
// logits (N,V); targets (N) i32 (−1: ignored); losses (N) per-row loss (0 when ignored).
// When grad_scale != 0, logits are overwritten by grad_scale · d loss_row / d logits
// (softmax − onehot), so probabilities are never stored. Returns the sum of
// losses; or, given loss_sum (f64 (1) on the op's device), adds it there and
// returns 0 without waiting for the device (the training step's form).
double cross_entropy(Tensor logits, Tensor targets, Tensor losses, float grad_scale, Tensor loss_sum = {});

// Vocab-parallel cross-entropy in three passes around two all-reduces (max,
// then Σexp and the target logit); logits (N,Vl) hold vocabulary columns
// [v0, v0+Vl). A target −1 is ignored (zero loss, zero gradient).
// rowmax (N) = max_j z_ij
void vocab_shard_row_max(Tensor logits, Tensor rowmax);
// sumexp (N) = Σ_j exp(z_ij − rowmax_i); target_logit (N) = z_i,t−v0 when the target is local, else 0
void vocab_shard_sumexp_target(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp,
                            Tensor target_logit);
// logits ← grad_scale · (exp(z − rowmax)/sumexp − onehot(target − v0)), with the global rowmax and sumexp
void vocab_shard_grad(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp, float grad_scale);

// losses (N) = rowmax + log(sumexp) − target_logit (0 where the target is −1);
// returns their sum (the vocab-parallel loss after the two all-reduces), or
// adds it to loss_sum (f64 (1)) as cross_entropy does.
double vocab_shard_loss(Tensor losses, Tensor targets, Tensor rowmax, Tensor sumexp, Tensor target_logit,
                     Tensor loss_sum = {});

// ---- optimizer -------------------------------------------------------------------
struct AdamWParams {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;      // 1-based, for bias correction
  float grad_scale;  // multiplies the gradient first
  Tensor clip;       // optional f32 (1) on the op's device: multiplies it too (clip_factor's result)
};
// param, grad, m, v: same shape; decoupled weight decay (param −= lr·wd·param)
void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& p);
// Σ x² accumulated in double; given acc (f64 (1) on x's device), adds it there
// and returns 0 without waiting for the device.
double sum_squares(Tensor x, Tensor acc = {});
// The gradient-clipping factor on the device: factor (f32 (1)) = max_norm / √norm_sq
// when max_norm > 0 and √norm_sq > max_norm, else 1; norm_sq f64 (1).
void clip_factor(Tensor factor, Tensor norm_sq, double max_norm);
// x *= s
void scale(Tensor x, float s);

// ---- attention --------------------------------------------------------------------
// Causal softmax attention, tiled with an online softmax: memory beyond the
// inputs and outputs is O(T). Grouped-query: query head h reads kv head h / (Hq/Hkv).
// q (B,T,Hq,d), k (B,T,Hkv,d), v (B,T,Hkv,dv); out (B,T,Hq,dv); lse (B,Hq,T)
void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v);
// dq, dk, dv overwritten
void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                        Tensor v, Tensor out, Tensor lse);

// Differential attention (DESIGN §2). One pass over each K/V tile feeds both
// softmax states; λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init.
struct DiffLambda {
  Tensor q1, k1, q2, k2;  // (d) each
  float lambda_init;
};
struct DiffLambdaGrads {
  Tensor q1, k1, q2, k2;  // (d) each, +=
};
// What the forward saves for the backward, all O(T).
struct DiffAttnCache {
  Tensor o1, o2;      // (B,T,H,2d): A1·V and A2·V, each normalised by its softmax sum
  Tensor lse1, lse2;  // (B,H,T)
  Tensor rstd;        // (B,T,H): sub-RMSNorm statistics
};
// λ read back to the host (synchronises on CUDA): for tools and analyses.
float diff_lambda(const DiffLambda& lam);
// out (1) f32 on lam's device = λ, without a host read (per-step statistics).
void diff_lambda_into(Tensor out, const DiffLambda& lam);
// q (B,T,2H,d), k (B,T,2KV,d), v (B,T,KV,2d), g_sub (2d);
// out (B,T,H,2d) = RMSNorm(o1 − λ·o2; g_sub) · (1 − λ_init)
void diff_attention_forward(Tensor out, const DiffAttnCache& cache, Tensor q, Tensor k, Tensor v,
                            const DiffLambda& lam, Tensor g_sub, float eps);
// dq, dk, dv overwritten; dlam and dg_sub (2d) +=
void diff_attention_backward(Tensor dq, Tensor dk, Tensor dv, const DiffLambdaGrads& dlam,
                             Tensor dg_sub, Tensor dout, Tensor q, Tensor k, Tensor v,
                             const DiffLambda& lam, Tensor g_sub, const DiffAttnCache& cache,
                             float eps);

// ---- context-parallel building blocks ------------------------------------------
// Attention of local queries against one block of keys: `maps` softmax maps
// share each V head (1: standard attention; 2: differential, where map m of
// head h uses query sub-head h·maps+m and key sub-head g·maps+m, g = h/(heads/kv)).
// q (B,Tq,heads·maps,d), k (B,Tk,kv·maps,d), v (B,Tk,kv,dv). The block pairs
// query rows [q0, q0+nq) with key rows [k0, k0+nk): causal when they are the
// same positions (nq == nk), else every key is visible.
struct AttnBlock {
  int q0, nq, k0, nk;
  bool causal;
};
// out[m] (B,Tq,heads,dv) rows of the block overwritten with the normalised
// output of map m; lse[m] (B,heads,Tq) likewise.
void attention_block_forward(int maps, const Tensor out[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                             const AttnBlock& blk);
// dq, dk, dv += this block's part. dO (B,Tq,heads,dv): gradient of the merged
// output; map m receives dscale_m·dO with dscale = {1} for maps == 1 and {1, −λ}
// for maps == 2, λ from lam (required then, ignored otherwise; on CUDA λ stays on
// the device). O[m], lse[m]: the merged forward results.
void attention_block_backward(int maps, Tensor dq, Tensor dk, Tensor dv, Tensor dO, const DiffLambda* lam,
                              const Tensor O[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                              const AttnBlock& blk);
// Merges a block result into running (out, lse) for rows [q0, q0+nq) by log-sum-exp:
// lse = log(e^lse + e^lse_b), out = out·e^(lse_old−lse) + out_b·e^(lse_b−lse). lse −inf = empty.
void attention_merge(Tensor out, Tensor lse, Tensor blk_out, Tensor blk_lse, int q0, int nq);
// out (B,T,H,2d) = RMSNorm(o1 − λ·o2; g_sub)·(1 − λ_init); rstd (B,T,H); λ and
// λ_init from lam, λ computed on the op's device.
void diff_combine_forward(Tensor out, Tensor rstd, Tensor o1, Tensor o2, const DiffLambda& lam, Tensor g_sub,
                          float eps);
// dpre (B,T,H,2d) = d loss/d(o1 − λ·o2) overwritten; dg_sub (2d) +=; dlam (the four
// λ vectors, d each) += d loss/dλ · dλ/dvector, with d loss/dλ kept on the device.
void diff_combine_backward(Tensor dpre, Tensor dg_sub, const DiffLambdaGrads& dlam, Tensor dout, Tensor o1,
                           Tensor o2, Tensor rstd, const DiffLambda& lam, Tensor g_sub);

// ---- DIFF V2 combine (DESIGN §2, diff_v2) ---------------------------------------
// o (B,T,2H,d): attention over 2H query heads; lam (B·T,H): λ before the sigmoid.
// out (B,T,H,d) = o[.., 2h, :] − σ(lam[.., h])·o[.., 2h+1, :]
void diff_v2_combine_forward(Tensor out, Tensor o, Tensor lam);
// Overwrites d_o (B,T,2H,d): d_o[2h] = dout[h], d_o[2h+1] = −σ·dout[h]; and
// dlam (B·T,H) = −σ(1 − σ)·⟨dout[h], o[2h+1]⟩ (σ = σ(lam)).
void diff_v2_combine_backward(Tensor d_o, Tensor dlam, Tensor dout, Tensor o, Tensor lam);

}  // namespace dt::ops
