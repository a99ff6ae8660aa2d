// The elementwise CUDA kernels' two paths against the CPU backend: 16-byte
// accesses when a row (or the whole tensor) is a multiple of 8 elements and
// every buffer is 16-byte aligned, element by element otherwise
// (kernels/cuda/cuda_common.cuh: kVec, FBuf::ld8/st8). Each op runs on a row
// length that is not a multiple of 8 and on views that start one element (2
// or 4 bytes) past a 16-byte boundary, as a ZeRO shard or an arena segment may;
// under the emulation a 16-byte access there would fault (misaligned address).
// Tolerances are those of test_cuda_ops.cpp for the same ops, restated here.
// Every test skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/test_util.hpp"

namespace {

using namespace dt;
using namespace dt_test;
using reftest::randn;
constexpr DType F32 = DType::F32, BF16 = DType::BF16, I32 = DType::I32;


// A device tensor whose data starts `offset` elements into a fresh (256-byte
// aligned) allocation: offset 1 puts it 2 (bf16) or 4 (f32) bytes past a
// 16-byte boundary. Filled with x, or poisoned (NaN) when x is empty.
class Placed {
 public:
  Placed(DType t, std::initializer_list<int64_t> dims, int64_t offset, const std::vector<float> &x = {})
      : buf_(t, {Tensor(nullptr, t, dims).numel() + offset}) {
    const int64_t n = buf_.tensor().numel() - offset;
    view_ = buf_.tensor().slice0(offset, offset + n).view(dims);
    if (x.empty()) {
      buf_.poison();
    } else if (t == BF16) {
      std::vector<uint16_t> bits(x.size());
      std::transform(x.begin(), x.end(), bits.begin(), bf16_bits);
      ops::copy(view_, Tensor(bits.data(), BF16, {n}));
    } else {
      ops::copy(view_, Tensor(const_cast<float *>(x.data()), t, {n}));
    }
  }
  operator Tensor() const { return view_; }
  std::vector<float> download() const { return to_host(view_); }

 private:
  GpuTensor buf_;
  Tensor view_;
};

std::string what(const std::string &op, DType t, int64_t len, int64_t off) {
  return op + " (" + dtype_name(t) + ", length " + std::to_string(len) + ", offset " + std::to_string(off) + ")";
}

// rstd and dg: f32 reductions of values exact on both sides, 1e-5. N = 40 rows
// is more than the emulated device holds at once (rmsnorm_backward's grid), so
// blocks walk several rows and leave partial dg rows.
TEST(CudaVectorPaths, RmsNormOnRaggedRowsAndMisalignedViewsMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2001);
  const int64_t N = 40;
  for (auto [C, off] : {std::pair<int64_t, int64_t>{36, 0}, {64, 1}})
    for (DType t : {BF16, F32}) {
      auto x = rand_as(t, N * C, rng), g = randn(size_t(C), rng, 0.5, 1.0);
      std::vector<float> out(size_t(N * C), 0.f), rstd(size_t(N), 0.f);
      Placed gx(t, {N, C}, off, x), gg(F32, {C}, off, g), gout(t, {N, C}, off), grstd(F32, {N}, 0);
      ops::rmsnorm_forward(cpu_f32(out.data(), {N, C}), cpu_f32(rstd.data(), {N}), cpu_f32(x.data(), {N, C}),
                           cpu_f32(g.data(), {C}), 1e-5f);
      ops::rmsnorm_forward(gout, grstd, gx, gg, 1e-5f);
      EXPECT_TRUE(close_to(gout.download(), out, elementwise(t), what("rmsnorm out", t, C, off)));
      EXPECT_TRUE(close_to(grstd.download(), rstd, {1e-5, 1e-5}, what("rmsnorm rstd", t, C, off)));

      auto dout = rand_as(t, N * C, rng), dx = rand_as(t, N * C, rng), dg = randn(size_t(C), rng);
      Placed gdout(t, {N, C}, off, dout), gdx(t, {N, C}, off, dx), gdg(F32, {C}, off, dg), grs(F32, {N}, 0, rstd);
      ops::rmsnorm_backward(cpu_f32(dx.data(), {N, C}), cpu_f32(dg.data(), {C}), cpu_f32(dout.data(), {N, C}),
                            cpu_f32(x.data(), {N, C}), cpu_f32(g.data(), {C}), cpu_f32(rstd.data(), {N}));
      ops::rmsnorm_backward(gdx, gdg, gdout, gx, gg, grs);
      EXPECT_TRUE(close_to(gdx.download(), dx, elementwise(t), what("rmsnorm dx +=", t, C, off)));
      EXPECT_TRUE(close_to(gdg.download(), dg, {1e-5, 1e-5}, what("rmsnorm dg +=", t, C, off)));
    }
}

// head_dim 36: the last step of each head is 4 columns; head_dim 64 on a view
// one element past the boundary. The table comes from the CPU (exact upload).
TEST(CudaVectorPaths, RopeOnRaggedHeadsAndMisalignedViewsMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2002);
  const int64_t B = 2, T = 5, nh = 3;
  for (auto [d, off] : {std::pair<int64_t, int64_t>{36, 0}, {64, 1}}) {
    std::vector<float> table(size_t(T * d));
    ops::rope_table(cpu_f32(table.data(), {T, d}), 10000.0, 7);
    Placed gtab(F32, {T, d}, off, table);
    for (DType t : {BF16, F32})
      for (bool backward : {false, true}) {
        auto x = rand_as(t, B * T * nh * d, rng);
        Placed gx(t, {B, T, nh, d}, off, x);
        const Tensor hx = cpu_f32(x.data(), {B, T, nh, d}), ht = cpu_f32(table.data(), {T, d});
        backward ? ops::rope_backward(hx, ht) : ops::rope_forward(hx, ht);
        backward ? ops::rope_backward(gx, gtab) : ops::rope_forward(gx, gtab);
        EXPECT_TRUE(
            close_to(gx.download(), x, elementwise(t), what(backward ? "rope_backward" : "rope_forward", t, d, off)));
      }
  }
}

// n = 1001: a flat launch whose last step is 1 element. Offsets (0, 0): the
// 16-byte path with a ragged tail; (1, 0): one operand misaligned, so the
// element path for all.
TEST(CudaVectorPaths, SwiGluCopyAndScaleOnRaggedAndMisalignedViewsMatchCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2003);
  const int64_t n = 1001;
  for (auto [oa, ob] : {std::pair<int64_t, int64_t>{0, 0}, {1, 0}})
    for (DType t : {BF16, F32}) {
      auto a = rand_as(t, n, rng, 3.0), b = rand_as(t, n, rng), dout = rand_as(t, n, rng);
      std::vector<float> out(size_t(n), 0.f), da(size_t(n), 0.f), db(size_t(n), 0.f);
      Placed ga(t, {n}, oa, a), gb(t, {n}, ob, b), gdout(t, {n}, ob, dout), gout(t, {n}, oa), gda(t, {n}, ob),
          gdb(t, {n}, oa);
      ops::swiglu_forward(cpu_f32(out.data(), {n}), cpu_f32(a.data(), {n}), cpu_f32(b.data(), {n}));
      ops::swiglu_forward(gout, ga, gb);
      ops::swiglu_backward(cpu_f32(da.data(), {n}), cpu_f32(db.data(), {n}), cpu_f32(dout.data(), {n}),
                           cpu_f32(a.data(), {n}), cpu_f32(b.data(), {n}));
      ops::swiglu_backward(gda, gdb, gdout, ga, gb);
      EXPECT_TRUE(close_to(gout.download(), out, elementwise(t), what("swiglu out", t, n, oa)));
      EXPECT_TRUE(close_to(gda.download(), da, elementwise(t), what("swiglu da", t, n, oa)));
      EXPECT_TRUE(close_to(gdb.download(), db, elementwise(t), what("swiglu db", t, n, oa)));

      // f32 → t conversion (exact for f32, one rounding to nearest even for
      // bf16), then scale: one fp32 product, then t's rounding.
      const auto x = randn(size_t(n), rng);
      Placed gsrc(F32, {n}, ob, x), gdst(t, {n}, oa);
      ops::copy(gdst, gsrc);
      EXPECT_TRUE(near_all(gdst.download(), rounded_to(x, t), 0, 0, what("copy f32 →", t, n, oa)));
      ops::scale(gdst, 0.37f);
      std::vector<float> scaled = rounded_to(x, t);
      for (float &e : scaled) e *= 0.37f;
      EXPECT_TRUE(close_to(gdst.download(), rounded_to(scaled, t), elementwise(t), what("scale", t, n, oa)));
    }
}

// AdamW over a segment that starts anywhere (offsets per buffer); the
// tolerances of CudaOps.AdamWStepsMatchCpu: param 5e-6 absolute, m and v 1e-5.
TEST(CudaVectorPaths, AdamWOnRaggedAndMisalignedSegmentsMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2004);
  const int64_t n = 1001;
  for (int64_t off : {0, 1}) {
    auto p = randn(size_t(n), rng), g = randn(size_t(n), rng), m = randn(size_t(n), rng, 0.1);
    auto v = randn(size_t(n), rng, 0.1);
    for (float &e : v) e = e * e;
    Placed gp(F32, {n}, off, p), gg(F32, {n}, 0, g), gm(F32, {n}, off, m), gv(F32, {n}, 1, v);
    const ops::AdamWParams hp{0.05f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.37f};
    ops::adamw(cpu_f32(p.data(), {n}), cpu_f32(g.data(), {n}), cpu_f32(m.data(), {n}), cpu_f32(v.data(), {n}), hp);
    ops::adamw(gp, gg, gm, gv, hp);
    EXPECT_TRUE(near_all(gp.download(), p, 5e-6, 0, what("adamw param", F32, n, off)));
    EXPECT_TRUE(close_to(gm.download(), m, {1e-6, 1e-5}, what("adamw m", F32, n, off)));
    EXPECT_TRUE(close_to(gv.download(), v, {1e-6, 1e-5}, what("adamw v", F32, n, off)));
  }
}

// V = 100 (rows of 12 steps and a 4-column tail) and V = 96 on a view one
// element past the boundary; a row with target −1 is ignored. Per-row losses:
// fp32 logsumexp in another order, 1e-5 of (1 + max |z|); gradient elementwise.
TEST(CudaVectorPaths, CrossEntropyOnRaggedAndMisalignedRowsMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2005);
  const int64_t N = 9;
  for (auto [V, off] : {std::pair<int64_t, int64_t>{100, 0}, {96, 1}})
    for (DType t : {BF16, F32}) {
      std::vector<int32_t> targets(N);
      for (auto &e : targets) e = int32_t(rng() % V);
      targets[4] = -1;
      targets[5] = int32_t(V - 1);  // in the last step of its row
      GpuTensor gtarg(I32, {N});
      gtarg.upload_i32(targets);
      auto z = rand_as(t, N * V, rng, 3.0);
      const double row_tol = 1e-5 * (1.0 + max_abs(z));
      std::vector<float> losses(size_t(N), 0.f);
      Placed gz(t, {N, V}, off, z), gl(F32, {N}, 0);
      const double want = ops::cross_entropy(cpu_f32(z.data(), {N, V}), cpu_i32(targets.data(), {N}),
                                             cpu_f32(losses.data(), {N}), 0.5f);
      EXPECT_NEAR(ops::cross_entropy(gz, gtarg, gl, 0.5f), want, row_tol * double(N)) << what("loss", t, V, off);
      EXPECT_TRUE(near_all(gl.download(), losses, row_tol, 0, what("per-row losses", t, V, off)));
      EXPECT_TRUE(close_to(gz.download(), z, elementwise(t), what("dlogits", t, V, off)));
    }
}

// Embedding rows of D = 36 (a 4-column tail) and D = 40 with E, out and dE one
// element past the boundary: the forward copies exactly, the deterministic
// backward adds in position order, exactly as the CPU does.
TEST(CudaVectorPaths, EmbeddingOnRaggedAndMisalignedRowsMatchesCpu) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  std::mt19937 rng(2006);
  const int64_t V = 50, N = 20;
  std::vector<int32_t> tok(N);
  for (auto &e : tok) e = int32_t(rng() % V);
  tok[2] = tok[7] = tok[11] = 3;  // one row three times
  GpuTensor gtok(I32, {N});
  gtok.upload_i32(tok);
  for (auto [D, off] : {std::pair<int64_t, int64_t>{36, 0}, {40, 1}})
    for (DType t : {BF16, F32}) {
      auto E = rand_as(t, V * D, rng), dout = rand_as(t, N * D, rng), dE = randn(size_t(V * D), rng);
      std::vector<float> out(size_t(N * D), 0.f);
      Placed gE(t, {V, D}, off, E), gout(t, {N, D}, off), gdout(t, {N, D}, 0, dout), gdE(F32, {V, D}, off, dE);
      ops::embedding_forward_shard(cpu_f32(out.data(), {N, D}), cpu_i32(tok.data(), {N}), cpu_f32(E.data(), {V, D}), 0,
                                   V);
      ops::embedding_forward_shard(gout, gtok, gE, 0, V);
      EXPECT_TRUE(near_all(gout.download(), out, 0, 0, what("embedding out", t, D, off)));
      ops::embedding_backward_shard(cpu_f32(dE.data(), {V, D}), cpu_i32(tok.data(), {N}), cpu_f32(dout.data(), {N, D}),
                                    0);
      ops::embedding_backward_shard(gdE, gtok, gdout, 0);
      EXPECT_TRUE(near_all(gdE.download(), dE, 0, 0, what("embedding dE += (deterministic)", t, D, off)));
    }
}

}  // namespace
