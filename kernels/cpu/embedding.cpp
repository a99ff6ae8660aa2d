#include <cstring>

#include "kernels/cpu/cpu_common.hpp"
#include "kernels/ops.hpp"

namespace dt::ops {

static void check_token(int32_t t, int64_t V) {
  if (t < 0 || t >= V) fail("token id ", t, " outside the vocabulary [0, ", V, "): data and model.vocab_size disagree");
}

// out (N,D) = E[tokens]
void embedding_forward(Tensor out, Tensor tokens, Tensor E) {
  require_cpu(out, "embedding_forward");
  const int64_t N = tokens.numel(), D = E.cols(), V = E.rows();
  DT_CHECK(out.numel() == N * D);
  const int32_t* tok = tokens.i32();
  for (int64_t i = 0; i < N; ++i) check_token(tok[i], V);
  float* o = out.f32();
  const float* e = E.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) std::memcpy(o + i * D, e + tok[i] * D, D * sizeof(float));
}

// dE (V,D) += dout rows scattered by token. Threads split the D columns, so
// two positions with the same token never race.
void embedding_backward(Tensor dE, Tensor tokens, Tensor dout) {
  require_cpu(dE, "embedding_backward");
  const int64_t N = tokens.numel(), D = dE.cols();
  const int32_t* tok = tokens.i32();
  const float* g = dout.f32();
  float* de = dE.f32();
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int64_t c0 = D * id / nt, c1 = D * (id + 1) / nt;
    for (int64_t i = 0; i < N; ++i) {
      float* row = de + tok[i] * D;
      const float* gi = g + i * D;
      for (int64_t c = c0; c < c1; ++c) row[c] += gi[c];
    }
  }
}

}  // namespace dt::ops
