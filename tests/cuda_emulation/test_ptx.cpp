// The emulated PTX instructions of kernels/cuda/ptx.cuh (tests/cuda_emulation/ptx.cpp)
// against plain matrix products on the host. Two independent routes to the same
// fragments must agree with the product: registers filled by hand from the PTX
// ISA's tables, and ldmatrix from shared memory (plain and .trans). A fragment
// indexed the way the ISA does not say must give a wrong product, and cp.async
// data must not be readable before its wait_group.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "emulated_runtime.hpp"
#include "kernels/cuda/ptx.cuh"

namespace {

using bf16 = __nv_bfloat16;
using namespace dt::cuda_ops;

template <typename T>
struct Dev {
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  T* p = nullptr;
  size_t n;
};

std::vector<bf16> random_bf16(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16(dist(rng));
  return v;
}

// D (16×8) = A (16×16, row-major) · B (16×8, [k][n]) in double from the bf16 values.
std::vector<double> product(const std::vector<bf16>& A, const std::vector<bf16>& B) {
  std::vector<double> D(16 * 8, 0.0);
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n)
      for (int k = 0; k < 16; ++k) D[r * 8 + n] += double(__bfloat162float(A[r * 16 + k])) * __bfloat162float(B[k * 8 + n]);
  return D;
}

// Largest |got − want| over the tile, relative to the largest |want|.
double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

uint32_t pair(const bf16* row, int col) {
  return uint32_t(static_cast<__nv_bfloat16_raw>(row[col]).x) |
         uint32_t(static_cast<__nv_bfloat16_raw>(row[col + 1]).x) << 16;
}

// Fragments from global memory by the ISA's tables; `swap` exchanges a[1] and a[2]
// (rows g+8 and columns 2t+8), an indexing mistake the product must expose.
void hand_fragments_kernel(const bf16* A, const bf16* Bt, float* D, bool swap) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  uint32_t a[4] = {pair(A + g * 16, 2 * t), pair(A + (g + 8) * 16, 2 * t), pair(A + g * 16, 2 * t + 8),
                   pair(A + (g + 8) * 16, 2 * t + 8)};
  if (swap) std::swap(a[1], a[2]);
  const uint32_t b[2] = {pair(Bt + g * 16, 2 * t), pair(Bt + g * 16, 2 * t + 8)};  // Bt[n][k]
  float acc[4] = {0, 0, 0, 0};
  ptx::mma(acc, a, b);
  D[g * 8 + 2 * t] = acc[0], D[g * 8 + 2 * t + 1] = acc[1];
  D[(g + 8) * 8 + 2 * t] = acc[2], D[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// A from shared memory by ldmatrix.x4; B twice: from Bt ([n][k]) by ldmatrix.x4
// (two B fragments: k 0-7 / 8-15 of n 0-7, then the same rows again) and from
// B ([k][n]) by ldmatrix.x4.trans; D1, D2 the two products.
void ldmatrix_kernel(const bf16* A, const bf16* Bt, const bf16* B, float* D1, float* D2) {
  bf16* s = emu::dynamic_smem<bf16>();
  bf16 *sA = s, *sBt = s + 16 * 24, *sB = sBt + 8 * 24;  // rows padded to 24 (48 bytes, 16-byte aligned)
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4, mi = lane / 8, q = lane % 8;
  for (int e = lane; e < 256; e += 32) sA[e / 16 * 24 + e % 16] = A[e];
  for (int e = lane; e < 128; e += 32) sBt[e / 16 * 24 + e % 16] = Bt[e], sB[e / 8 * 24 + e % 8] = B[e];
  __syncwarp();
  uint32_t a[4], bt[4], b[4];
  ptx::ldmatrix_x4(a, sA + ((mi % 2) * 8 + q) * 24 + (mi / 2) * 8);
  ptx::ldmatrix_x4(bt, sBt + q * 24 + (mi % 2) * 8);
  ptx::ldmatrix_x4_trans(b, sB + ((mi % 2) * 8 + q) * 24);
  const uint32_t b1[2] = {bt[0], bt[1]}, b2[2] = {b[0], b[1]};
  float acc1[4] = {0, 0, 0, 0}, acc2[4] = {0, 0, 0, 0};
  ptx::mma(acc1, a, b1);
  ptx::mma(acc2, a, b2);
  for (int i = 0; i < 4; ++i) {
    const int idx = (g + 8 * (i / 2)) * 8 + 2 * t + i % 2;
    D1[idx] = acc1[i];
    D2[idx] = acc2[i];
  }
}

void cp_async_kernel(const float* src, float* before, float* after, float* zero) {
  float* s = emu::dynamic_smem<float>();
  const int lane = threadIdx.x;
  ptx::cp_async_16(s + 4 * lane, src + 4 * lane, true);
  ptx::cp_async_16(s + 128 + 4 * lane, src, false);
  ptx::cp_async_commit();
  before[lane] = s[4 * lane];
  ptx::cp_async_wait<0>();
  after[lane] = s[4 * lane];
  zero[lane] = s[128 + 4 * lane];
}

void misaligned_ldmatrix_kernel() {
  bf16* s = emu::dynamic_smem<bf16>();
  uint32_t r[4];
  ptx::ldmatrix_x4(r, s + threadIdx.x * 8 + 4);  // 8 bytes past a 16-byte boundary
}

std::string run_failure() {
  const cudaError_t e = cudaDeviceSynchronize();
  std::string what = e == cudaSuccess ? "" : cudaGetErrorString(e);
  emu::reset_after_failure();
  return what;
}

TEST(CudaEmulationPtx, MmaFragmentsByTheIsaTablesGiveTheProduct) {
  const auto A = random_bf16(256, 1), Bt = random_bf16(128, 2);
  std::vector<bf16> B(128);
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) B[k * 8 + n] = Bt[n * 16 + k];
  const auto want = product(A, B);
  Dev<bf16> dA(A), dBt(Bt);
  for (bool swap : {false, true}) {
    Dev<float> dD(std::vector<float>(128, NAN));
    emu::launch("hand_fragments_kernel", 0, hand_fragments_kernel, dim3(1), dim3(32), 0, dA.p, dBt.p, dD.p, swap);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    // fp32 sums of 16 exact bf16 products: a few fp32 ulps of the tile's scale.
    if (!swap) EXPECT_LT(rel_error(dD.get(), want), 1e-6);
    else EXPECT_GT(rel_error(dD.get(), want), 0.1) << "a wrongly indexed A fragment went unnoticed";
  }
}

TEST(CudaEmulationPtx, LdmatrixFragmentsPlainAndTransposedGiveTheProduct) {
  const auto A = random_bf16(256, 3), Bt = random_bf16(128, 4);
  std::vector<bf16> B(128);
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) B[k * 8 + n] = Bt[n * 16 + k];
  const auto want = product(A, B);
  Dev<bf16> dA(A), dBt(Bt), dB(B);
  Dev<float> D1(std::vector<float>(128, NAN)), D2(std::vector<float>(128, NAN));
  emu::launch("ldmatrix_kernel", 0, ldmatrix_kernel, dim3(1), dim3(32), size_t(40 * 24 * 2), dA.p, dBt.p, dB.p, D1.p,
              D2.p);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_LT(rel_error(D1.get(), want), 1e-6);
  EXPECT_LT(rel_error(D2.get(), want), 1e-6);
}

TEST(CudaEmulationPtx, CpAsyncDataIsUndefinedUntilItsWaitGroup) {
  std::vector<float> src(128);
  for (int i = 0; i < 128; ++i) src[i] = float(i + 1);
  Dev<float> dsrc(src), before(std::vector<float>(32, 0)), after(std::vector<float>(32, 0)),
      zero(std::vector<float>(32, 1));
  emu::launch("cp_async_kernel", 0, cp_async_kernel, dim3(1), dim3(32), size_t(256 * 4), dsrc.p, before.p, after.p,
              zero.p);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto b = before.get(), a = after.get(), z = zero.get();
  for (int l = 0; l < 32; ++l) {
    EXPECT_TRUE(std::isnan(b[l])) << "lane " << l << " read cp.async data before its wait_group";
    EXPECT_EQ(a[l], float(4 * l + 1));
    EXPECT_EQ(z[l], 0.f) << "src-size 0 fills zeros";
  }
}

TEST(CudaEmulationPtx, MisalignedLdmatrixRowFaults) {
  emu::launch("misaligned_ldmatrix_kernel", 0, misaligned_ldmatrix_kernel, dim3(1), dim3(32), size_t(1024));
  EXPECT_NE(run_failure().find("not 16-byte aligned"), std::string::npos);
}

}  // namespace
