// Host emulation of the CUDA device API that kernels/cuda/*.cu use, so the
// unmodified kernel sources, compiled as C++ by the host compiler, run without
// a GPU (tests/CMakeLists.txt builds difftron_cuda_emulation_tests with it;
// kernels/cuda/cuda_common.cuh routes DT_LAUNCH and DT_DYNAMIC_SMEM here under
// DIFFTRON_CUDA_EMULATION).
//
// What it models. A launch is queued on its stream and runs later on the
// emulated device's worker thread (device.hpp: streams, events, the legacy
// stream's implicit barrier, host synchronisation), like every copy, memset,
// cuBLASLt matmul and NCCL operation; an op runs once what CUDA orders it
// after has run, and no sooner. Every load and store of a kernel, and every
// access a copy, cuBLASLt or NCCL declares, is checked against the memory's
// history (memory.hpp): an access that nothing orders against another
// stream's or the host's is a race, reported with the buffer and both
// operations; one outside every live allocation, or past the dynamic shared
// memory the launch asked for, is a fault. The blocks of a launch run one
// after another, and the threads of a block are fibers switched only at
// barriers. __syncthreads is a block barrier (exited threads count as arrived;
// all waiting threads must be at the same source line); __syncwarp, shuffles,
// mma.sync and ldmatrix are warp barriers (every lane, at the same line). The first
// warp with a runnable lane runs until all its lanes wait, so it gets as far
// ahead of the others as the barriers allow, and lanes run one after another
// between warp barriers; the order is ascending in one block and descending in
// the next, and the block order flips between launches (or, with a block-order
// seed, is a fresh permutation per launch), so a missing barrier shows up as a
// wrong value in one direction or the other, and an order-dependent result
// (float atomics) as different bits between seeds. Shared memory (dynamic and
// static) and cudaMalloc'd memory start as 0xFF bytes (NaN as f32 and bf16).
// mma.sync.m16n8k16 and ldmatrix (ptx.hpp) give each lane exactly the
// elements the PTX ISA's fragment tables give it, computed from the other
// lanes' registers, so a misindexed fragment computes wrong numbers; cp.async
// leaves its destination NaN until the thread's wait_group retires it. Launch
// configurations are checked at the launch (block and grid size, dynamic
// shared memory against the 48 KB default, the cudaFuncSetAttribute opt-in and
// the sm_80 maximum); a fault while the kernel runs (deadlock, divergent
// barrier, a misaligned or out-of-range ldmatrix/cp.async address, an
// out-of-bounds access, an n-byte load or store of device, pinned or shared
// memory at an address that is not a multiple of n) becomes the device's
// sticky error, which every later runtime call returns, as on a GPU. The
// alignment check sees the accesses as g++ emits them: a uint4 copy it splits
// into four 4-byte ones is checked as those, so the kernels' 16-byte accesses
// go through ld16/st16 (cuda_common.cuh), which check theirs as one
// (vector_access).
//
// What it cannot model: the weak memory model and inter-block concurrency
// (atomics are trivially atomic); tensor-core and special-function rounding
// (products and sums are plain fp32; of __expf's approximation only the
// rounding of x·log2 e is reproduced); the alignment of static __shared__
// arrays (the host compiler's, which may exceed what nvcc guarantees) and
// accesses to kernel locals and parameters (registers or local memory on the
// GPU, unchecked); the size of static __shared__ arrays (not counted against
// the 48 KB); host code reading device memory outside a tensor accessor (only
// Tensor::f32/i32/f64 of a CPU tensor check, core/emulation_hooks.hpp);
// registers, occupancy, performance.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// The CUDA keywords as plain C++: device functions are ordinary functions and
// a static __shared__ array is one host static (blocks run one at a time), kept
// in its own section so every block starts with it poisoned (launch.cpp).
#undef __shared__
#define __shared__ static __attribute__((section("dt_emu_shared")))
#define __launch_bounds__(...)

namespace emu {

// A cp.async copy this thread issued and has not yet waited for (ptx.cpp).
struct AsyncCopy {
  unsigned char* dst;
  const unsigned char* src;  // null: zero fill (src-size 0)
  unsigned bytes;
};

// The running CUDA thread, as the scheduler (launch.cpp) sees it.
struct Thread {
  uint3 tid;
  unsigned linear, lane, warp;
  unsigned shfl_parity;  // which of the two shuffle buffers the next shuffle uses
  uint64_t xchg_count = 0;  // mma/ldmatrix meetings so far; the parity picks the exchange buffer (ptx.cpp)
  std::vector<AsyncCopy> cp_open;                 // cp.async issued since the last commit_group
  std::vector<std::vector<AsyncCopy>> cp_groups;  // committed groups not yet waited for, oldest first
};
inline Thread* cur = nullptr;
inline uint3 block_idx_now;
inline dim3 grid_dim_now, block_dim_now;
inline unsigned char* dynamic_smem_now = nullptr;
inline size_t dynamic_smem_bytes_now = 0;               // as the launch asked
inline uint64_t* shfl_buf_now[2] = {nullptr, nullptr};  // [parity][thread]
// The warp-collective PTX instructions' exchange (ptx.cpp): kXchgWords per thread.
constexpr unsigned kXchgWords = 6;
inline uint64_t* xchg_buf_now[2] = {nullptr, nullptr};  // [parity][thread·kXchgWords + word]

// Barriers: the calling fiber waits until the others of its block (or warp)
// arrive at the same source line. token: a value every lane of a warp must agree on.
void block_barrier(const std::source_location& site);
void warp_barrier(const std::source_location& site, uint64_t token, const char* what);
// Fails the running kernel (the launch reports it through cudaGetLastError).
[[noreturn]] void fault(const std::string& what, const std::source_location& site);

// A 16-byte access of the kernels' vector helpers (cuda_common.cuh: ld16,
// st16), which copy with memcpy (not instrumented): checked here for bounds,
// races and alignment, as the instrumentation checks an aligned access.
void vector_access(const void* p, size_t bytes, bool write);

template <typename T>
T* dynamic_smem() {
  return reinterpret_cast<T*>(dynamic_smem_now);
}

// Queues a launch on `stream`: body(ctx) runs as every thread of every block
// when the emulated device reaches it (device.hpp). A bad configuration is
// recorded for cudaGetLastError at once, as a failed launch is on the GPU; a
// fault while the kernel runs becomes the device's sticky error.
using Body = void (*)(void*);
void submit_grid(const char* name, cudaStream_t stream, const void* kernel, dim3 grid, dim3 block,
                 size_t smem_bytes, Body body, std::shared_ptr<void> ctx);

// DT_LAUNCH under emulation: the arguments are converted to the kernel's
// parameter types once, as a real launch copies them, and every thread gets
// its own copy.
template <typename... P, typename... A>
void launch(const char* name, cudaStream_t stream, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes,
            A&&... args) {
  struct Ctx {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  };
  auto ctx = std::make_shared<Ctx>(Ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)});
  const Body body = [](void* p) {
    auto* c = static_cast<Ctx*>(p);
    std::apply(c->kernel, c->params);
  };
  submit_grid(name, stream, reinterpret_cast<const void*>(kernel), grid, block, smem_bytes, body, ctx);
}

// The mask must name every lane of the warp: the kernels only use full-warp operations.
inline void check_full_mask(unsigned mask, const std::source_location& site) {
  const unsigned lanes = std::min(32u, block_dim_now.x * block_dim_now.y * block_dim_now.z - cur->warp * 32u);
  const unsigned full = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
  if (mask != full) fault("warp operation with a partial lane mask (not emulated)", site);
}

}  // namespace emu

#define threadIdx (static_cast<const uint3&>(::emu::cur->tid))
#define blockIdx (static_cast<const uint3&>(::emu::block_idx_now))
#define gridDim (static_cast<const dim3&>(::emu::grid_dim_now))
#define blockDim (static_cast<const dim3&>(::emu::block_dim_now))
constexpr int warpSize = 32;

inline void __syncthreads(const std::source_location& site = std::source_location::current()) {
  emu::block_barrier(site);
}

inline void __syncwarp(unsigned mask = 0xffffffffu,
                       const std::source_location& site = std::source_location::current()) {
  emu::check_full_mask(mask, site);
  emu::warp_barrier(site, 0, "__syncwarp");
}

// Every lane publishes its value in this shuffle's buffer, the warp meets, and
// each lane reads its partner's. Consecutive shuffles alternate buffers, so one
// barrier suffices: a buffer is rewritten only after the next barrier, which
// every lane reaches after reading it.
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  const std::source_location& site = std::source_location::current()) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  emu::check_full_mask(mask, site);
  if (width != 32) emu::fault("__shfl_xor_sync with width != 32 (not emulated)", site);
  emu::Thread& t = *emu::cur;
  uint64_t* buf = emu::shfl_buf_now[t.shfl_parity];
  t.shfl_parity ^= 1u;
  std::memcpy(&buf[t.linear], &var, sizeof(T));
  emu::warp_barrier(site, 0, "__shfl_xor_sync");
  const unsigned src = t.warp * 32u + ((t.lane ^ unsigned(lane_mask)) & 31u);
  if (src >= emu::block_dim_now.x * emu::block_dim_now.y * emu::block_dim_now.z)
    emu::fault("__shfl_xor_sync from a lane beyond the block", site);
  T out;
  std::memcpy(&out, &buf[src], sizeof(T));
  return out;
}

// One host thread runs every CUDA thread, so read-modify-write is atomic as written.
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline double atomicAdd(double* p, double v) {
  const double old = *p;
  *p = old + v;
  return old;
}
inline int atomicCAS(int* p, int compare, int value) {
  const int old = *p;
  if (old == compare) *p = value;
  return old;
}

// __expf is ex2.approx(x·log2 e) on the GPU; the fp32 product is the part of
// its error that grows with |x|, so the emulation rounds it the same way.
inline float __expf(float x) { return std::exp2(x * 1.44269504088896341f); }

using std::max;
using std::min;

// nvcc's cuda_runtime.h has this overload for kernel pointers only under __CUDACC__.
template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
