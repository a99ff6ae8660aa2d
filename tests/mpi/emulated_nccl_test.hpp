// Shared by the emulated NCCL's test program (emulated_nccl_semantics.cpp,
// emulated_nccl_failures.cpp): the communicator under test, checks, inputs that
// every rank can compute for every other rank, device buffers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace nccltest {

using bf16 = __nv_bfloat16;
using Clock = std::chrono::steady_clock;

inline int g_rank = 0, g_size = 1, g_failed = 0, g_passed = 0;
inline ncclComm_t g_comm = nullptr;
inline cudaStream_t g_stream = nullptr;
inline Clock::time_point g_t0;  // failures report the time since

[[noreturn]] inline void die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "rank %d: %s failed after %.1f s: %s\n", g_rank, what.c_str(),
               std::chrono::duration<double>(Clock::now() - g_t0).count(), why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}
#define CUDA_OK(call)                                                  \
  do {                                                                 \
    if (cudaError_t e_ = (call)) die(#call, cudaGetErrorString(e_));   \
  } while (0)
#define NCCL_OK(call)                                                                                 \
  do {                                                                                                \
    if (ncclResult_t r_ = (call)) die(#call, std::string(ncclGetErrorString(r_)) + ": " +             \
                                                 ncclGetLastError(g_comm));                           \
  } while (0)

inline void sync_stream() { CUDA_OK(cudaStreamSynchronize(g_stream)); }

inline void expect(bool ok, const std::string& name, const std::string& detail = "") {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::fprintf(stderr, "rank %d: FAIL %s %s\n", g_rank, name.c_str(), detail.c_str());
}

// ---- inputs: every rank can compute every other rank's ----

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Magnitudes spread over 2^-8..2^8, so a sum in another order rounds differently.
template <class T>
T value(uint64_t source, size_t i, uint64_t salt) {
  const uint64_t h = mix(mix(source * 0x100000001b3ull + salt) + i);
  const double u = double(h >> 11) / double(1ull << 53) * 2 - 1;
  const double v = std::ldexp(u, int(h % 17) - 8);
  if constexpr (std::is_same_v<T, bf16>) return __float2bfloat16(float(v));
  else if constexpr (std::is_same_v<T, int32_t>) return int32_t(uint32_t(h >> 7));
  else return T(v);
}

template <class T> using Acc = std::conditional_t<std::is_same_v<T, bf16>, float, T>;
template <class T> Acc<T> widen(T v) {
  if constexpr (std::is_same_v<T, bf16>) return __bfloat162float(v);
  else return v;
}
template <class T> T narrow(Acc<T> v) {
  if constexpr (std::is_same_v<T, bf16>) return __float2bfloat16(v);
  else return v;
}
template <class A> A combine(A a, A b, ncclRedOp_t op) {
  if (op == ncclMax) return b > a ? b : a;
  if constexpr (std::is_integral_v<A>) return A(uint32_t(a) + uint32_t(b));
  else return a + b;
}
// The rank-ordered reduction of element `index` of every rank's input.
template <class T> T reduce_ranks(size_t index, uint64_t salt, ncclRedOp_t op) {
  Acc<T> acc = widen(value<T>(0, index, salt));
  for (int q = 1; q < g_size; ++q) acc = combine(acc, widen(value<T>(uint64_t(q), index, salt)), op);
  return narrow<T>(acc);
}

// ---- device buffers ----

template <class T> T* upload(const std::vector<T>& h) {
  void* d = nullptr;
  CUDA_OK(cudaMalloc(&d, h.size() * sizeof(T)));
  if (!h.empty()) CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  // A pageable upload may land after cudaMemcpy returns, and NCCL's stream does
  // not wait for the legacy default stream: wait for the device.
  CUDA_OK(cudaDeviceSynchronize());
  return static_cast<T*>(d);
}
template <class T> std::vector<T> download(const T* d, size_t n) {
  std::vector<T> h(n);
  if (n) CUDA_OK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}
template <class T> std::vector<T> inputs(uint64_t source, size_t n, uint64_t salt, size_t first = 0) {
  std::vector<T> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = value<T>(source, first + i, salt);
  return h;
}

// Bitwise equality with the expected values, and across ranks (a hash of the bytes).
template <class T>
void expect_bits(const std::vector<T>& got, const std::vector<T>& want, const std::string& name,
                 bool same_on_every_rank = true) {
  size_t bad = got.size();
  for (size_t i = 0; i < got.size() && bad == got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) bad = i;
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : std::string(reinterpret_cast<const char*>(got.data()), got.size() * sizeof(T)))
    h = (h ^ c) * 1099511628211ull;
  std::vector<uint64_t> all(static_cast<size_t>(g_size));
  MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  bool same = true;
  for (uint64_t a : all) same = same && a == all[0];
  expect(bad == got.size(), name, "first wrong element " + std::to_string(bad));
  if (same_on_every_rank) expect(same, name + ": bit-identical on every rank");
}

inline const char* op_name(ncclRedOp_t op) { return op == ncclMax ? "max" : "sum"; }

// ---- point to point: messages from rank src to rank dst ----

inline int next() { return (g_rank + 1) % g_size; }
inline int prev() { return (g_rank + g_size - 1) % g_size; }
inline uint64_t pair(int src, int dst) { return uint64_t(src) * 1000 + uint64_t(dst); }
inline size_t pair_count(int src, int dst) { return 50000 + 1000 * size_t(src) + 10 * size_t(dst); }  // > 64 KiB

// The scenarios (emulated_nccl_failures.cpp).
void ring_old_grouping();
void size_mismatch();
void collective_mismatch();
void slow_peer();
void busy_peer();
void stuck_peer();

}  // namespace nccltest
