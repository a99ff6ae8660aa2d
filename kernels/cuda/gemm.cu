// GEMM through cuBLASLt, with the row-major semantics of kernels/cpu/gemm.cpp:
// C [M,N] = alpha · op(A) [M,K] · op(B) [K,N] + beta · C on the tensors' 2-D views.
//
// cuBLASLt is column-major. A row-major [r, c] matrix with leading dimension c
// is, read column-major, its transpose [c, r] with the same leading dimension.
// So row-major C = op(A)·op(B) is column-major Cᵀ [N,M] = op(B)ᵀ·op(A)ᵀ, and we
// hand cuBLASLt the operands swapped:
//   cuBLASLt "A" = B's memory, stored layout [B.cols, B.rows] ld B.cols, op = trans_b
//   cuBLASLt "B" = A's memory, stored layout [A.cols, A.rows] ld A.cols, op = trans_a
//   cuBLASLt "C"/"D" = C's memory, layout [N, M] ld N;  m = N, n = M, k = K.
// (trans_b = false: B's memory read column-major is Bᵀ = op(B)ᵀ, no transpose;
//  trans_b = true:  it is Bᵀ while op(B)ᵀ = B, so transpose; likewise for A.)
#include <cublasLt.h>

#include <algorithm>
#include <array>
#include <map>

#include "kernels/cuda/cuda_reduce.cuh"
#include "kernels/cuda/cuda_ops.hpp"

#define CUBLAS_CHECK(call)                                                                         \
  do {                                                                                             \
    cublasStatus_t st_ = (call);                                                                   \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                              \
      ::dt::fail(__FILE__, ":", __LINE__, ": cuBLASLt error: ", cublasLtGetStatusString(st_));     \
  } while (0)

namespace dt::cuda_ops {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// One handle and one workspace per device, created on first use.
struct DeviceGemm {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

DeviceGemm& device_gemm(int dev) {
  static DeviceGemm per_device[kMaxDevices];
  if (dev < 0 || dev >= kMaxDevices) fail("matmul: device index ", dev, " beyond the supported ", kMaxDevices);
  DeviceGemm& g = per_device[dev];
  if (!g.handle) {
    CUBLAS_CHECK(cublasLtCreate(&g.handle));
    g.workspace = cuda_malloc_counted(kWorkspaceBytes);
  }
  return g;
}

// Everything cuBLASLt needs for one problem shape, built once and reused.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

// Largest power of two (≤ 256) dividing the address: the heuristic must only
// pick kernels that work with the pointers' actual alignment.
uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (a > 1 && (reinterpret_cast<uintptr_t>(p) % a) != 0) a >>= 1;
  return a;
}

cudaDataType_t cuda_type(DType t) { return t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// (device, M, N, K, trans_a, trans_b, dtype A/B, dtype C, alignments of A, B, C)
using PlanKey = std::array<int64_t, 11>;

const Plan& get_plan(const PlanKey& key, int dev, DType ab, DType cd, const Tensor& A, const Tensor& B,
                     bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  static std::map<PlanKey, Plan> plans;
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;

  DeviceGemm& g = device_gemm(dev);
  Plan p;
  // fp32 compute and scale for every input type: no TF32, so f32 GEMMs match the CPU closely.
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt A is our B
  const cublasOperation_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt B is our A
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, cuda_type(ab), uint64_t(B.cols()), uint64_t(B.rows()), B.cols()));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, cuda_type(ab), uint64_t(A.cols()), uint64_t(A.rows()), A.cols()));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, cuda_type(cd), uint64_t(N), uint64_t(M), N));

  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  const uint32_t align_a = uint32_t(key[8]), align_b = uint32_t(key[9]), align_c = uint32_t(key[10]);
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // Our A is cuBLASLt's B and vice versa.
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_b,
                                                    sizeof(align_b)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_a,
                                                    sizeof(align_a)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                    sizeof(align_c)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                    sizeof(align_c)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found));
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  if (found == 0)
    fail("matmul: cuBLASLt has no algorithm for C [", M, ",", N, "] ", dtype_name(cd), " = op(A)",
         trans_a ? "ᵀ" : "", " · op(B)", trans_b ? "ᵀ" : "", " with K ", K, ", A/B ", dtype_name(ab),
         " (alignments ", align_a, "/", align_b, "/", align_c, " bytes)");
  p.algo = result.algo;
  return plans.emplace(key, p).first->second;
}

__global__ void fill_pattern_kernel(__nv_bfloat16* p, int64_t n, uint32_t salt) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const uint32_t h = (uint32_t(i) ^ salt) * 2654435761u;
  p[i] = __float2bfloat16(float(h >> 24) / 256.f - 0.5f);
}

}  // namespace

// D = alpha·op(A)·op(B) + beta·C with C and D of the same shape and dtype;
// C may be D (in place) or another tensor (the residual read by the epilogue).
static void gemm(Tensor D, Tensor C, Tensor A, bool trans_a, Tensor B, bool trans_b, float alpha, float beta) {
  fbuf(D, "matmul C");
  fbuf(C, "matmul C");
  fbuf(A, "matmul A");
  fbuf(B, "matmul B");
  DT_CHECK(C.dtype == D.dtype && C.numel() == D.numel(), "matmul: C ", C.shape_str(), " and D ", D.shape_str());
  if (A.dtype != B.dtype)
    fail("matmul: A and B must have the same dtype on CUDA, got A ", dtype_name(A.dtype), " and B ",
         dtype_name(B.dtype));
  if (A.dtype == DType::F32 && D.dtype != DType::F32)
    fail("matmul: f32 A and B need an f32 C on CUDA, got ", dtype_name(D.dtype));
  const int64_t M = D.rows(), N = D.cols();
  const int64_t K = trans_a ? A.rows() : A.cols();
  DT_CHECK((trans_a ? A.cols() : A.rows()) == M, "matmul A ", A.shape_str(), " C ", D.shape_str());
  DT_CHECK((trans_b ? B.rows() : B.cols()) == N, "matmul B ", B.shape_str(), " C ", D.shape_str());
  DT_CHECK((trans_b ? B.cols() : B.rows()) == K, "matmul inner dims A ", A.shape_str(), " B ", B.shape_str());
  if (M == 0 || N == 0) return;
  if (K == 0) {  // D = beta·C; cuBLASLt does not take k = 0
    if (beta == 0.f) {
      CUDA_CHECK(cudaMemsetAsync(D.ptr, 0, D.bytes(), cuda_stream()));
      return;
    }
    if (C.ptr != D.ptr) copy(D, C);
    if (beta != 1.f) scale(D, beta);
    return;
  }
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev != D.device.index)
    fail("matmul: C is on ", D.device.str(), " but the current CUDA device is ", dev,
         " (call cudaSetDevice for this rank's GPU first)");
  // C and D share one layout; the plan is keyed by the weaker of their alignments.
  const PlanKey key{dev, M, N, K, trans_a, trans_b, int64_t(A.dtype), int64_t(D.dtype),
                    alignment(A.ptr), alignment(B.ptr), std::min(alignment(C.ptr), alignment(D.ptr))};
  const Plan& p = get_plan(key, dev, A.dtype, D.dtype, A, B, trans_a, trans_b, M, N, K);
  DeviceGemm& g = device_gemm(dev);
  // beta ≠ 0 reads C in its own dtype.
  CUBLAS_CHECK(cublasLtMatmul(g.handle, p.desc, &alpha, B.ptr, p.a, A.ptr, p.b, &beta, C.ptr, p.c, D.ptr, p.c,
                              &p.algo, g.workspace, kWorkspaceBytes, cuda_stream()));
}

void matmul(Tensor C, Tensor A, bool trans_a, Tensor B, bool trans_b, float alpha, float beta) {
  gemm(C, C, A, trans_a, B, trans_b, alpha, beta);
}

void linear_residual_forward(Tensor out, Tensor base, Tensor x, Tensor W) {
  if (base.defined()) gemm(out, base, x, false, W, true, 1.f, 1.f);
  else gemm(out, out, x, false, W, true, 1.f, 0.f);
}

double measure_gemm_tflops(int device, int n) {
  if (n <= 0) fail("measure_gemm_tflops: n must be positive, got ", n);
  int prev = 0;
  CUDA_CHECK(cudaGetDevice(&prev));
  CUDA_CHECK(cudaSetDevice(device));
  const int64_t nn = int64_t(n) * n;
  __nv_bfloat16 *a = nullptr, *b = nullptr, *c = nullptr;
  a = static_cast<__nv_bfloat16*>(cuda_malloc_counted(nn * sizeof(__nv_bfloat16)));
  b = static_cast<__nv_bfloat16*>(cuda_malloc_counted(nn * sizeof(__nv_bfloat16)));
  c = static_cast<__nv_bfloat16*>(cuda_malloc_counted(nn * sizeof(__nv_bfloat16)));
  // Non-zero inputs: tensor cores draw less power (and run faster) on zeros.
  DT_LAUNCH(fill_pattern_kernel, blocks_for(nn, 256), 256, 0, a, nn, 0x1234u);
  DT_LAUNCH(fill_pattern_kernel, blocks_for(nn, 256), 256, 0, b, nn, 0xabcdu);
  const Device d = Device::cuda(device);
  Tensor A(a, DType::BF16, {n, n}, d), B(b, DType::BF16, {n, n}, d), C(c, DType::BF16, {n, n}, d);
  // The model's linear layers multiply by Wᵀ, so time that form.
  for (int i = 0; i < 5; ++i) matmul(C, A, false, B, true, 1.f, 0.f);
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  constexpr int kIters = 20;
  CUDA_CHECK(cudaEventRecord(start, cuda_stream()));
  for (int i = 0; i < kIters; ++i) matmul(C, A, false, B, true, 1.f, 0.f);
  CUDA_CHECK(cudaEventRecord(stop, cuda_stream()));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  CUDA_CHECK(cudaFree(a));
  CUDA_CHECK(cudaFree(b));
  CUDA_CHECK(cudaFree(c));
  CUDA_CHECK(cudaSetDevice(prev));
  const double seconds = double(ms) / 1e3 / kIters;
  return 2.0 * double(n) * double(n) * double(n) / seconds / 1e12;
}

}  // namespace dt::cuda_ops
