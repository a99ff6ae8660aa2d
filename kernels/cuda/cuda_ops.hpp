// The CUDA implementations of kernels/ops.hpp, one per op, with the same
// signatures (linear_* and the unsharded embedding reach them through matmul
// and the *_shard ops). The op in kernels/cpu/*.cpp forwards here when its first tensor
// lives on a CUDA device (DT_ON_CUDA in kernels/cpu/cpu_common.hpp), so model
// code calls dt::ops::* and never names a backend.
//
// Precision (DESIGN §3): every floating tensor may be F32 or BF16 unless said
// otherwise; kernels load each tensor in its own dtype and compute and
// accumulate in fp32. Statistics are F32: rstd, lse, losses, rowmax, sumexp,
// target_logit. Optimizer state (param, grad, m, v) is F32. Attention inputs
// and outputs (q, k, v, out, dout, dq, dk, dv) are BF16: the tensor-core tiles
// read bf16. Everything runs on the compute stream (cuda_stream(), the legacy
// default stream, so cudaMemcpy orders with it); ops that return a host value
// synchronise, unless given a device accumulator (f64) to add their result
// to. Backward ops reduce in a fixed order unless ops::deterministic() is
// false (then dq, dE, dg_sub and dλ accumulate with float atomics).
#pragma once
#include <cstdint>

#include "core/tensor.hpp"
#include "kernels/ops.hpp"

namespace dt::cuda_ops {

void matmul(Tensor C, Tensor A, bool trans_a, Tensor B, bool trans_b, float alpha, float beta);
void linear_residual_forward(Tensor out, Tensor base, Tensor x, Tensor W);

void embedding_forward_shard(Tensor out, Tensor tokens, Tensor E, int64_t v0, int64_t vocab_total);
void embedding_backward_shard(Tensor dE, Tensor tokens, Tensor dout, int64_t v0);

void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor g, float eps);
void rmsnorm_backward(Tensor dx, Tensor dg, Tensor dout, Tensor x, Tensor g, Tensor rstd);

void rope_table(Tensor table, double theta, int64_t pos0);
void rope_forward(Tensor x, Tensor table);
void rope_backward(Tensor dx, Tensor table);

void swiglu_forward(Tensor out, Tensor a, Tensor b);
void swiglu_backward(Tensor da, Tensor db, Tensor dout, Tensor a, Tensor b);

double cross_entropy(Tensor logits, Tensor targets, Tensor losses, float grad_scale, Tensor loss_sum);
void vocab_shard_row_max(Tensor logits, Tensor rowmax);
void vocab_shard_sumexp_target(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp,
                            Tensor target_logit);
void vocab_shard_grad(Tensor logits, Tensor targets, int64_t v0, Tensor rowmax, Tensor sumexp, float grad_scale);
double vocab_shard_loss(Tensor losses, Tensor targets, Tensor rowmax, Tensor sumexp, Tensor target_logit,
                     Tensor loss_sum);

void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, const ops::AdamWParams& p);
double sum_squares(Tensor x, Tensor acc);
void clip_factor(Tensor factor, Tensor norm_sq, double max_norm);
void scale(Tensor x, float s);
// dst, src on the same CUDA device, f32/bf16 in any combination, or i32 to i32.
void copy(Tensor dst, Tensor src);
void fill(Tensor t, float value);  // f32

void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v);
void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                        Tensor lse);
float diff_lambda(const ops::DiffLambda& lam);
void diff_lambda_into(Tensor out, const ops::DiffLambda& lam);
void diff_attention_forward(Tensor out, const ops::DiffAttnCache& cache, Tensor q, Tensor k, Tensor v,
                            const ops::DiffLambda& lam, Tensor g_sub, float eps);
void diff_attention_backward(Tensor dq, Tensor dk, Tensor dv, const ops::DiffLambdaGrads& dlam, Tensor dg_sub,
                             Tensor dout, Tensor q, Tensor k, Tensor v, const ops::DiffLambda& lam, Tensor g_sub,
                             const ops::DiffAttnCache& cache, float eps);

void attention_block_forward(int maps, const Tensor out[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                             const ops::AttnBlock& blk);
void attention_block_backward(int maps, Tensor dq, Tensor dk, Tensor dv, Tensor dO, const ops::DiffLambda* lam,
                              const Tensor O[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                              const ops::AttnBlock& blk);
void attention_merge(Tensor out, Tensor lse, Tensor blk_out, Tensor blk_lse, int q0, int nq);
void diff_combine_forward(Tensor out, Tensor rstd, Tensor o1, Tensor o2, const ops::DiffLambda& lam, Tensor g_sub,
                          float eps);
void diff_combine_backward(Tensor dpre, Tensor dg_sub, const ops::DiffLambdaGrads& dlam, Tensor dout, Tensor o1,
                           Tensor o2, Tensor rstd, const ops::DiffLambda& lam, Tensor g_sub);

void diff_v2_combine_forward(Tensor out, Tensor o, Tensor lam);
void diff_v2_combine_backward(Tensor d_o, Tensor dlam, Tensor dout, Tensor o, Tensor lam);

// Achieved bf16 GEMM throughput (TFLOP/s) of cuBLASLt on an n×n×n product, the
// peak against which benchmarks report MFU.
double measure_gemm_tflops(int device, int n);

}  // namespace dt::cuda_ops
