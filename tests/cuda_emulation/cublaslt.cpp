// The cuBLASLt subset kernels/cuda/gemm.cu uses, on the host, written from the
// cuBLASLt documentation (and the toolkit's cublasLt.h) rather than from
// gemm.cu, so the emulation checks gemm.cu's row-major ↔ column-major mapping:
//
//   cublasLtMatmul: D = alpha·op(A)·op(B) + beta·C, every matrix column-major
//   (CUBLASLT_ORDER_COL): element (i, j) of a layout (type, rows, cols, ld) is at
//   index i + j·ld, ld ≥ rows. op(A) is m×k, op(B) k×n, C and D m×n, with m, n
//   the rows and cols of D; CUBLAS_OP_T reads the stored matrix transposed.
//   beta = 0 leaves C unread. alpha and beta are host floats (scale type 32F).
//
// Supported, as in the documented type table for CUBLAS_COMPUTE_32F with
// CUDA_R_32F scale: A, B bf16 with C = D bf16 or f32; A, B, C, D f32 (no TF32).
// Products and sums are fp32. Anything else (other compute or data types,
// epilogues, batches, row-major orders, device pointer mode) fails with
// CUBLAS_STATUS_NOT_SUPPORTED and a message in cublasLtGetStatusString.
//
// The algorithm the heuristic returns remembers the problem, the pointer
// alignments promised in the preference (default 256 bytes, as documented) and
// a workspace need; cublasLtMatmul checks it is used for that problem, with
// pointers that keep the promise, a large enough workspace, and matrices that
// lie inside device allocations. The product itself is queued on the given
// stream and runs on the emulated device's worker (device.hpp).
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "emulated_runtime.hpp"

struct cublasLtContext {
  uint32_t magic;
};

namespace {

constexpr uint32_t kHandle = 0x4C54486Eu, kDesc = 0x4C544465u, kLayout = 0x4C544C61u, kPref = 0x4C545072u,
                   kAlgo = 0x4C54416Cu;

struct DescState {
  uint32_t magic;
  int32_t compute, scale, transa, transb, pointer_mode;
  uint32_t epilogue;
};
struct LayoutState {
  uint32_t magic;
  int32_t type, order, batch;
  uint64_t rows, cols;
  int64_t ld;
};
struct PrefState {
  uint32_t magic;
  uint32_t align[4];  // promised minimum alignment of A, B, C, D in bytes
  uint64_t max_workspace;
};
struct AlgoState {
  uint32_t magic;
  uint32_t align[4];
  uint64_t problem;  // hash of the problem it was chosen for
  uint64_t workspace;
};

// The semi-opaque descriptors hold our state in their data arrays.
template <typename S, typename O>
S& state(O* o) {
  static_assert(sizeof(S) <= sizeof(o->data) && std::is_trivially_copyable_v<S>);
  return *std::launder(reinterpret_cast<S*>(o->data));
}
template <typename S, typename O>
void init_state(O* o, const S& s) {
  static_assert(sizeof(S) <= sizeof(o->data) && std::is_trivially_copyable_v<S>);
  new (o->data) S(s);
}

std::string message;

cublasStatus_t fail(cublasStatus_t status, const std::string& what) {
  message = what;
  return status;
}

size_t type_size(int32_t t) { return t == CUDA_R_16BF ? 2 : 4; }
const char* type_name(int32_t t) { return t == CUDA_R_16BF ? "bf16" : t == CUDA_R_32F ? "f32" : "unsupported type"; }

struct Problem {
  uint64_t m, n, k;
  int32_t transa, transb, ab, cd;
  uint64_t hash() const {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t v : {m, n, k, uint64_t(transa), uint64_t(transb), uint64_t(ab), uint64_t(cd)})
      h = (h ^ v) * 1099511628211ull;
    return h;
  }
};

bool valid_layout(cublasLtMatrixLayout_t l) { return l && state<LayoutState>(l).magic == kLayout; }

// m, n, k from D and the operations, with every documented constraint checked.
cublasStatus_t problem_of(cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                          cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d, Problem& p) {
  if (!desc || state<DescState>(desc).magic != kDesc || !valid_layout(a) || !valid_layout(b) || !valid_layout(c) ||
      !valid_layout(d))
    return fail(CUBLAS_STATUS_INVALID_VALUE, "a descriptor was not created by cublasLt*Create");
  const DescState& s = state<DescState>(desc);
  const LayoutState &A = state<LayoutState>(a), &B = state<LayoutState>(b), &C = state<LayoutState>(c),
                    &D = state<LayoutState>(d);
  if (s.compute != CUBLAS_COMPUTE_32F || s.scale != CUDA_R_32F)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, "only CUBLAS_COMPUTE_32F with CUDA_R_32F scale is emulated");
  if (s.pointer_mode != CUBLASLT_POINTER_MODE_HOST || s.epilogue != CUBLASLT_EPILOGUE_DEFAULT)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, "only host alpha/beta and the default epilogue are emulated");
  for (const LayoutState* l : {&A, &B, &C, &D}) {
    if (l->order != CUBLASLT_ORDER_COL || l->batch != 1)
      return fail(CUBLAS_STATUS_NOT_SUPPORTED, "only column-major, unbatched layouts are emulated");
    if (l->ld < int64_t(l->rows) || l->rows == 0 || l->cols == 0)
      return fail(CUBLAS_STATUS_INVALID_VALUE, "layout " + std::to_string(l->rows) + "x" + std::to_string(l->cols) +
                                                   " with ld " + std::to_string(l->ld) +
                                                   " (column-major needs ld >= rows)");
  }
  const bool ta = s.transa != CUBLAS_OP_N, tb = s.transb != CUBLAS_OP_N;
  p = {D.rows, D.cols, ta ? A.rows : A.cols, s.transa, s.transb, A.type, D.type};
  const uint64_t a_rows = ta ? A.cols : A.rows, b_rows = tb ? B.cols : B.rows, b_cols = tb ? B.rows : B.cols;
  if (a_rows != p.m || b_rows != p.k || b_cols != p.n || C.rows != D.rows || C.cols != D.cols)
    return fail(CUBLAS_STATUS_INVALID_VALUE,
                "inconsistent shapes: op(A) " + std::to_string(a_rows) + "x" + std::to_string(p.k) + ", op(B) " +
                    std::to_string(b_rows) + "x" + std::to_string(b_cols) + ", C " + std::to_string(C.rows) + "x" +
                    std::to_string(C.cols) + ", D " + std::to_string(D.rows) + "x" + std::to_string(D.cols));
  const bool ab_ok = A.type == B.type && (A.type == CUDA_R_16BF || A.type == CUDA_R_32F);
  const bool cd_ok = C.type == D.type && (D.type == CUDA_R_32F || (D.type == CUDA_R_16BF && A.type == CUDA_R_16BF));
  if (!ab_ok || !cd_ok)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, std::string("type combination A ") + type_name(A.type) + ", B " +
                                                 type_name(B.type) + ", C " + type_name(C.type) + ", D " +
                                                 type_name(D.type) + " is not emulated");
  return CUBLAS_STATUS_SUCCESS;
}

// Bytes a column-major layout spans.
size_t extent(const LayoutState& l) { return ((l.cols - 1) * uint64_t(l.ld) + l.rows) * type_size(l.type); }

// The columns of a stored matrix, as accesses of the running op.
void declare(const void* p, const LayoutState& l, bool write) {
  const size_t es = type_size(l.type);
  for (uint64_t j = 0; j < l.cols; ++j) emu::access(static_cast<const char*>(p) + j * uint64_t(l.ld) * es, l.rows * es, write);
}

float load(const void* p, int32_t type, size_t i) {
  return type == CUDA_R_16BF ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i])
                             : static_cast<const float*>(p)[i];
}
void store(void* p, int32_t type, size_t i, float x) {
  if (type == CUDA_R_16BF) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(x);
  else static_cast<float*>(p)[i] = x;
}

// The product in fp32: op(A) as m rows of k, op(B)ᵀ as n rows of k, so each
// element of D is one contiguous dot product (eight partial sums).
void compute(const Problem& p, float alpha, const void* A, const LayoutState& la, const void* B, const LayoutState& lb,
             float beta, const void* C, const LayoutState& lc, void* D, const LayoutState& ld) {
  const uint64_t m = p.m, n = p.n, k = p.k;
  std::vector<float> a(m * k), bt(n * k);
  for (uint64_t i = 0; i < m; ++i)
    for (uint64_t l = 0; l < k; ++l)
      a[i * k + l] = load(A, la.type, p.transa == CUBLAS_OP_N ? i + l * la.ld : l + i * la.ld);
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t l = 0; l < k; ++l)
      bt[j * k + l] = load(B, lb.type, p.transb == CUBLAS_OP_N ? l + j * lb.ld : j + l * lb.ld);
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t i = 0; i < m; ++i) {
      const float* x = &a[i * k];
      const float* y = &bt[j * k];
      float part[8] = {};
      uint64_t l = 0;
      for (; l + 8 <= k; l += 8)
        for (int u = 0; u < 8; ++u) part[u] += x[l + u] * y[l + u];
      for (; l < k; ++l) part[0] += x[l] * y[l];
      const float acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      const float c = beta == 0.f ? 0.f : beta * load(C, lc.type, i + j * lc.ld);
      store(D, ld.type, i + j * ld.ld, alpha * acc + c);
    }
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  *handle = new cublasLtContext{kHandle};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasLtGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_(other)";
  }
}
const char* cublasLtGetStatusString(cublasStatus_t status) {
  static std::string s;
  s = std::string(cublasLtGetStatusName(status)) + " (emulated cuBLASLt: " + message + ")";
  return s.c_str();
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  *desc = new cublasLtMatmulDescOpaque_t{};
  init_state(*desc, DescState{kDesc, compute, scale, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_POINTER_MODE_HOST,
                              CUBLASLT_EPILOGUE_DEFAULT});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t bytes) {
  DescState& s = state<DescState>(desc);
  int32_t* field = attr == CUBLASLT_MATMUL_DESC_COMPUTE_TYPE   ? &s.compute
                   : attr == CUBLASLT_MATMUL_DESC_SCALE_TYPE   ? &s.scale
                   : attr == CUBLASLT_MATMUL_DESC_TRANSA       ? &s.transa
                   : attr == CUBLASLT_MATMUL_DESC_TRANSB       ? &s.transb
                   : attr == CUBLASLT_MATMUL_DESC_POINTER_MODE ? &s.pointer_mode
                                                               : nullptr;
  if (attr == CUBLASLT_MATMUL_DESC_EPILOGUE) field = reinterpret_cast<int32_t*>(&s.epilogue);
  if (!field) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "matmul descriptor attribute " + std::to_string(int(attr)));
  if (!buf || bytes != sizeof(int32_t)) return fail(CUBLAS_STATUS_INVALID_VALUE, "attribute size is not 4 bytes");
  std::memcpy(field, buf, sizeof(int32_t));
  if ((attr == CUBLASLT_MATMUL_DESC_TRANSA || attr == CUBLASLT_MATMUL_DESC_TRANSB) &&
      !(*field == CUBLAS_OP_N || *field == CUBLAS_OP_T))
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, "only CUBLAS_OP_N and CUBLAS_OP_T are emulated");
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  *layout = new cublasLtMatrixLayoutOpaque_t{};
  init_state(*layout, LayoutState{kLayout, type, CUBLASLT_ORDER_COL, 1, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  *pref = new cublasLtMatmulPreferenceOpaque_t{};
  init_state(*pref, PrefState{kPref, {256, 256, 256, 256}, 0});  // documented defaults
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t bytes) {
  PrefState& s = state<PrefState>(pref);
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (!buf || bytes != sizeof(uint64_t)) return fail(CUBLAS_STATUS_INVALID_VALUE, "workspace size is a uint64_t");
    std::memcpy(&s.max_workspace, buf, bytes);
    return CUBLAS_STATUS_SUCCESS;
  }
  const int which = attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES   ? 0
                    : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES ? 1
                    : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES ? 2
                    : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES ? 3
                                                                         : -1;
  if (which < 0) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "preference attribute " + std::to_string(int(attr)));
  if (!buf || bytes != sizeof(uint32_t)) return fail(CUBLAS_STATUS_INVALID_VALUE, "an alignment is a uint32_t");
  std::memcpy(&s.align[which], buf, bytes);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!handle || handle->magic != kHandle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
  if (requested <= 0) return fail(CUBLAS_STATUS_INVALID_VALUE, "requestedAlgoCount <= 0");
  if (!pref || state<PrefState>(pref).magic != kPref) return fail(CUBLAS_STATUS_INVALID_VALUE, "no preference");
  Problem p;
  if (cublasStatus_t st = problem_of(desc, a, b, c, d, p)) return st;
  const PrefState& ps = state<PrefState>(pref);
  results[0] = cublasLtMatmulHeuristicResult_t{};
  // A kernel that needs some workspace, when allowed, so a missing one shows.
  const AlgoState algo{kAlgo,
                       {ps.align[0], ps.align[1], ps.align[2], ps.align[3]},
                       p.hash(),
                       std::min<uint64_t>(ps.max_workspace, uint64_t(1) << 20)};
  init_state(&results[0].algo, algo);
  results[0].workspaceSize = algo.workspace;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (!handle || handle->magic != kHandle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
  Problem p;
  if (cublasStatus_t st = problem_of(desc, a, b, c, d, p)) return st;
  if (!algo)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, "the emulation needs the algo from cublasLtMatmulAlgoGetHeuristic");
  const AlgoState& as = state<AlgoState>(const_cast<cublasLtMatmulAlgo_t*>(algo));
  if (as.magic != kAlgo || as.problem != p.hash())
    return fail(CUBLAS_STATUS_INVALID_VALUE, "the algo was chosen by the heuristic for a different problem");
  const float fa = *static_cast<const float*>(alpha), fb = *static_cast<const float*>(beta);
  const LayoutState &LA = state<LayoutState>(a), &LB = state<LayoutState>(b), &LC = state<LayoutState>(c),
                    &LD = state<LayoutState>(d);
  const void* ptrs[4] = {A, B, C, D};
  const LayoutState* lays[4] = {&LA, &LB, &LC, &LD};
  const char* names = "ABCD";
  for (int i = 0; i < 4; ++i) {
    if (i == 2 && fb == 0.f) continue;  // C is not read
    if (reinterpret_cast<uintptr_t>(ptrs[i]) % as.align[i] != 0)
      return fail(CUBLAS_STATUS_INVALID_VALUE, std::string("matrix ") + names[i] + " is less aligned than the " +
                                                   std::to_string(as.align[i]) + " bytes promised to the heuristic");
    if (!emu::in_device_allocation(ptrs[i], extent(*lays[i])))
      return fail(CUBLAS_STATUS_INVALID_VALUE, std::string("matrix ") + names[i] + " (" +
                                                   std::to_string(extent(*lays[i])) +
                                                   " bytes) is not inside a device allocation");
  }
  if (C == D && (LC.ld != LD.ld || LC.type != LD.type))
    return fail(CUBLAS_STATUS_INVALID_VALUE, "in-place C = D needs identical C and D layouts");
  if (workspace_bytes < as.workspace || (as.workspace > 0 && !emu::in_device_allocation(workspace, as.workspace)))
    return fail(CUBLAS_STATUS_INVALID_VALUE,
                "workspace smaller than the algo's " + std::to_string(as.workspace) + " bytes or not device memory");
  // Queued on the stream like a kernel; every column it reads or writes is declared to the race detector.
  emu::enqueue(stream, "cublasLtMatmul", [=] {
    declare(A, LA, false);
    declare(B, LB, false);
    if (fb != 0.f) declare(C, LC, false);
    declare(D, LD, true);
    compute(p, fa, A, LA, B, LB, fb, C, LC, D, LD);
    return emu::Progress::kDone;
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
