// Vocab-parallel embedding on CUDA (kernels/cpu/embedding.cpp).
//
// Unlike the CPU op, the forward does not fail on a token outside
// [0, vocab_total): checking would need a host synchronisation every step.
// Such a token reads no memory and yields a zero row (as a token of another
// shard does); token ids are validated where they are read from the data.
//
// The backward is deterministic by default: block (g, cc) owns the local rows
// r ≡ g (mod G), G = min(Vl, 256), and the columns of chunk cc (2048 wide: 8
// per thread, cuda_common.cuh's kVec, with 16-byte accesses when aligned). It
// walks the N positions in ascending order, 256 at a time, compacts the ones
// whose token it owns (order kept) and adds their dout rows, so each dE element
// has one writer and sums its positions in position order. Cost: every block
// reads all N token ids (G·⌈D/2048⌉·N·4 bytes, mostly from L2: 34 MB for
// N = 16K, D = 3072) plus each owned dout row once; no scratch memory. A block's
// time grows with how often its tokens occur (all N positions one token: one
// row group does all N·D adds), which natural text keeps far from that.
// With ops::deterministic() false, one block per position adds with fp32
// atomics instead.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace dt::cuda_ops {
namespace {

constexpr int kThreads = 256;

// One block per position. out (N,D) = E[tokens − v0] where that row is local,
// else 0; E (Vl,D). Columns in steps of kVec per thread (cuda_common.cuh),
// 16-byte accesses when vec (D % 8 == 0, both buffers 16-byte aligned).
__global__ void embedding_forward_kernel(FBuf out, const int32_t* tokens, FBuf E, int64_t v0, int64_t Vl,
                                         int64_t D, bool vec) {
  const int64_t i = blockIdx.x;
  const int64_t r = int64_t(tokens[i]) - v0;
  const bool local = r >= 0 && r < Vl;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < D; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(D, c);
    float v[kVec] = {};
    if (local) E.ld8(r * D + c, v, vec, n);
    out.st8(i * D + c, v, vec, n);
  }
}

// One block per position: dE (Vl,D) f32 += dout (N,D) row where the token is
// local. Positions sharing a token add with fp32 atomics, so the summation
// order (and the last bits of dE) may vary from run to run.
__global__ void embedding_backward_kernel(float* dE, const int32_t* tokens, FBuf dout, int64_t v0, int64_t Vl,
                                          int64_t D, bool vec) {
  const int64_t i = blockIdx.x;
  const int64_t r = int64_t(tokens[i]) - v0;
  if (r < 0 || r >= Vl) return;
  for (int64_t c = threadIdx.x * int64_t(kVec); c < D; c += int64_t(blockDim.x) * kVec) {
    const int n = vec_len(D, c);
    float v[kVec];
    dout.ld8(i * D + c, v, vec, n);
    DT_UNROLL
    for (int j = 0; j < kVec; ++j)
      if (j < n) atomicAdd(dE + r * D + c + j, v[j]);
  }
}

constexpr int kRowGroups = 256;   // G at most
constexpr int kChunkCols = kThreads * kVec;  // columns per block of the deterministic backward: one step per thread

// Warp ballot from full-warp xor shuffles (the host emulation has no __ballot_sync).
__device__ __forceinline__ unsigned warp_ballot(bool pred) {
  unsigned bits = pred ? 1u << (threadIdx.x % 32) : 0u;
  for (int o = 16; o > 0; o >>= 1) bits |= __shfl_xor_sync(0xffffffffu, bits, o);
  return bits;
}
__device__ __forceinline__ int bit_count(unsigned x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return int((((x + (x >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
}

// grid (G, ⌈D/kChunkCols⌉); block kThreads. dE (Vl,D) f32 += dout (N,D) rows of
// the positions whose local row r = tokens − v0 has r % G == blockIdx.x, in
// ascending position order (see the top of this file).
__global__ void embedding_backward_owned_kernel(float* dE, const int32_t* tokens, FBuf dout, int64_t N, int64_t v0,
                                                int64_t Vl, int64_t D, int G, bool vec) {
  __shared__ int s_count[kThreads / 32];  // owned positions per warp in this chunk
  __shared__ int s_pos[kThreads];         // the chunk's owned positions (offsets), ascending
  __shared__ int64_t s_row[kThreads];     // and their local rows
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t c0 = int64_t(blockIdx.y) * kChunkCols, c1 = c0 + kChunkCols < D ? c0 + kChunkCols : D;
  for (int64_t base = 0; base < N; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    const int64_t r = i < N ? int64_t(tokens[i]) - v0 : -1;
    const bool mine = r >= 0 && r < Vl && r % G == int64_t(blockIdx.x);
    const unsigned ballot = warp_ballot(mine);
    if (lane == 0) s_count[warp] = bit_count(ballot);
    __syncthreads();
    int offset = 0, total = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      offset += w < warp ? s_count[w] : 0;
      total += s_count[w];
    }
    if (mine) {
      const int k = offset + bit_count(ballot & ((1u << lane) - 1u));
      s_pos[k] = int(threadIdx.x);
      s_row[k] = r;
    }
    __syncthreads();
    const int64_t c = c0 + threadIdx.x * int64_t(kVec);  // this thread's step of the chunk
    const int n = c < c1 ? vec_len(c1, c) : 0;
    for (int k = 0; k < total && n > 0; ++k) {
      const FBuf row{dE + s_row[k] * D, false};
      const int64_t src = (base + s_pos[k]) * D;
      float e[kVec], d[kVec];
      row.ld8(c, e, vec, n);
      dout.ld8(src + c, d, vec, n);
      DT_UNROLL
      for (int j = 0; j < kVec; ++j) e[j] += d[j];
      row.st8(c, e, vec, n);
    }
    __syncthreads();  // the next chunk rewrites s_count, s_pos and s_row
  }
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
  DT_LAUNCH(embedding_forward_kernel, N, row_threads(vec_steps(D), kThreads), 0, o, tokens.i32(), e, v0, Vl, D,
            vec_ok(D, {o.p, e.p}));
}

void embedding_backward_shard(Tensor dE, Tensor tokens, Tensor dout, int64_t v0) {
  const int64_t N = tokens.numel(), D = dE.cols(), Vl = dE.rows();
  DT_CHECK(dout.numel() == N * D);
  const char* op = "embedding_backward_shard";
  require_dtype(tokens, DType::I32, op, "tokens");
  require_dtype(dE, DType::F32, op, "dE");
  const FBuf g = fbuf(dout, op);
  if (N == 0 || Vl == 0) return;
  if (!ops::deterministic()) {
    DT_LAUNCH(embedding_backward_kernel, N, row_threads(vec_steps(D), kThreads), 0, dE.f32(), tokens.i32(), g, v0, Vl,
              D, vec_ok(D, {g.p}));
    return;
  }
  const int G = int(std::min<int64_t>(Vl, kRowGroups));
  const dim3 grid(G, unsigned(blocks_for(D, kChunkCols)));
  DT_LAUNCH(embedding_backward_owned_kernel, grid, kThreads, 0, dE.f32(), tokens.i32(), g, N, v0, Vl, D, G,
            vec_ok(D, {dE.ptr, g.p}));
}

}  // namespace dt::cuda_ops
