// Vocab-parallel embedding on CUDA (kernels/cpu/embedding.cpp).
//
// Unlike the CPU op, the forward does not fail on a token outside
// [0, vocab_total): checking would need a host synchronisation every step.
// Such a token reads no memory and yields a zero row (as a token of another
// shard does); token ids are validated where they are read from the data.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// One block per position. out (N,D) = E[tokens − v0] where that row is local, else 0; E (Vl,D).
__global__ void embedding_forward_kernel(FBuf out, const int32_t* tokens, FBuf E, int64_t v0, int64_t Vl,
                                         int64_t D) {
  const int64_t i = blockIdx.x;
  const int64_t r = int64_t(tokens[i]) - v0;
  const bool local = r >= 0 && r < Vl;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) out.st(i * D + c, local ? E.ld(r * D + c) : 0.f);
}

// One block per position: dE (Vl,D) f32 += dout (N,D) row where the token is
// local. Positions sharing a token add with fp32 atomics, so the summation
// order (and the last bits of dE) may vary from run to run.
__global__ void embedding_backward_kernel(float* dE, const int32_t* tokens, FBuf dout, int64_t v0, int64_t Vl,
                                          int64_t D) {
  const int64_t i = blockIdx.x;
  const int64_t r = int64_t(tokens[i]) - v0;
  if (r < 0 || r >= Vl) return;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) atomicAdd(dE + r * D + c, dout.ld(i * D + c));
}

}  // namespace

void embedding_forward_shard(Tensor out, Tensor tokens, Tensor E, int64_t v0, int64_t vocab_total) {
  (void)vocab_total;  // see the note at the top of this file
  const int64_t N = tokens.numel(), D = E.cols(), Vl = E.rows();
  DT_CHECK(out.numel() == N * D);
  const char* op = "embedding_forward_shard";
  require_dtype(tokens, DType::I32, op, "tokens");
  const FBuf o = fbuf(out, op), e = fbuf(E, op);
  if (N == 0) return;
  DT_LAUNCH(embedding_forward_kernel, N, kThreads, 0, o, tokens.i32(), e, v0, Vl, D);
}

void embedding_backward_shard(Tensor dE, Tensor tokens, Tensor dout, int64_t v0) {
  const int64_t N = tokens.numel(), D = dE.cols(), Vl = dE.rows();
  DT_CHECK(dout.numel() == N * D);
  const char* op = "embedding_backward_shard";
  require_dtype(tokens, DType::I32, op, "tokens");
  require_dtype(dE, DType::F32, op, "dE (accumulated with fp32 atomics)");
  const FBuf g = fbuf(dout, op);
  if (N == 0) return;
  DT_LAUNCH(embedding_backward_kernel, N, kThreads, 0, dE.f32(), tokens.i32(), g, v0, Vl, D);
}

}  // namespace dt::cuda_ops
