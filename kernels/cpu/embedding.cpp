#include <cstring>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

static void check_tokens(const int32_t* tok, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; ++i)
    if (tok[i] < 0 || tok[i] >= V)
      fail("token id ", tok[i], " outside the vocabulary [0, ", V, "): data and model.vocab_size disagree");
}

void embedding_forward_shard(Tensor out, Tensor tokens, Tensor E, int64_t v0, int64_t vocab_total) {
  DT_ON_CUDA(out, embedding_forward_shard(out, tokens, E, v0, vocab_total));
  const int64_t N = tokens.numel(), D = E.cols(), Vl = E.rows();
  DT_CHECK(out.numel() == N * D);
  const int32_t* tok = tokens.i32();
  check_tokens(tok, N, vocab_total);
  float* o = out.f32();
  const float* e = E.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const int64_t r = tok[i] - v0;
    if (r >= 0 && r < Vl) std::memcpy(o + i * D, e + r * D, D * sizeof(float));
    else std::memset(o + i * D, 0, D * sizeof(float));
  }
}

// Threads split the D columns, so two positions with the same token never race.
void embedding_backward_shard(Tensor dE, Tensor tokens, Tensor dout, int64_t v0) {
  DT_ON_CUDA(dE, embedding_backward_shard(dE, tokens, dout, v0));
  const int64_t N = tokens.numel(), D = dE.cols(), Vl = dE.rows();
  const int32_t* tok = tokens.i32();
  const float* g = dout.f32();
  float* de = dE.f32();
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = D * id / nt, c1 = D * (id + 1) / nt;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t r = tok[i] - v0;
      if (r < 0 || r >= Vl) continue;
      float* row = de + r * D;
      const float* gi = g + i * D;
      for (int64_t c = c0; c < c1; ++c) row[c] += gi[c];
    }
  }
}

void embedding_forward(Tensor out, Tensor tokens, Tensor E) {
  embedding_forward_shard(out, tokens, E, 0, E.rows());
}

void embedding_backward(Tensor dE, Tensor tokens, Tensor dout) { embedding_backward_shard(dE, tokens, dout, 0); }

}  // namespace dt::ops
