// Host-side state shared by the emulated CUDA runtime (runtime.cpp, device.cpp),
// the launcher (launch.cpp), the emulated cuBLASLt (cublaslt.cpp) and the
// emulated NCCL (nccl.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace emu {

// The error the next cudaGetLastError returns, with the message
// cudaGetErrorString gives for it.
void record_error(cudaError_t code, const std::string& message);

// Dynamic shared memory a kernel opted into with cudaFuncSetAttribute (0 if none).
size_t opted_in_smem(const void* kernel);

// Whether [p, p + bytes) lies inside one live cudaMalloc allocation.
bool in_device_allocation(const void* p, size_t bytes);
// Whether [p, p + bytes) lies inside one live cudaMallocHost / cudaHostAlloc allocation.
bool in_pinned_allocation(const void* p, size_t bytes);

// The order in which a launch runs its blocks (and each block its warps and
// lanes): 0, the default, alternates ascending and descending between
// launches; any other seed draws a permutation per launch from (seed, launch
// number), so results that depend on the order (float atomics) differ between
// seeds. Also set by DIFFTRON_EMU_BLOCK_ORDER_SEED.
void set_block_order_seed(uint64_t seed);

// The largest dynamic shared memory a block may opt into on sm_80, the
// smallest of the targeted architectures (163 KB).
constexpr size_t kMaxOptInSmem = 166912;
constexpr size_t kDefaultSmem = 48 * 1024;

// ---- the device: streams as queues run by a device thread (device.cpp) ------------
//
// Every stream-ordered call (a kernel launch, cudaMemcpyAsync, cudaMemsetAsync,
// a cuBLASLt matmul, an NCCL operation) becomes an op queued on its stream; a
// device thread runs the ops later, each once its stream-order and event
// dependencies are met (CUDA's guarantees and no more).

enum class Progress { kDone, kBlocked };

// Queues `run` on stream s (0 or cudaStreamLegacy: the legacy default stream).
// `run` is called on the device thread; an op that waits for another process
// (NCCL) returns kBlocked and is called again later while other streams' work
// proceeds. `name` appears in race, fault and deadlock reports.
void enqueue(cudaStream_t s, std::string name, std::function<Progress()> run);

// From inside a running op: it reads (write = false) or writes [p, p + bytes).
// Device and pinned memory are checked against their allocations and against
// unordered accesses of other streams and the host (a race is reported with
// both operations); other host memory is not tracked.
void access(const void* p, size_t bytes, bool write);

// From inside a running op: the op fails. The message is printed at once and
// becomes the sticky error that every later CUDA call of the host returns.
void op_fault(const std::string& message);

// The name of the op running on the device thread ("" elsewhere).
const char* running_op_name();

// Host-side accesses to pinned memory (and, from tests, to device memory),
// checked like an op's: the host must have synchronised with every op that
// touched the range. Declared by core's host_access hook (core/device.hpp).
void host_access(const void* p, size_t bytes, bool write);

// Times the host has blocked waiting for the device (cudaStreamSynchronize,
// cudaEventSynchronize, cudaDeviceSynchronize, blocking copies, cudaFree).
uint64_t host_sync_count();

// For the emulator's own tests: waits for the device (dropping what a failure
// left queued) and clears the sticky error, so the next test starts clean.
void reset_after_failure();

// Test-build fault injection (DIFFTRON_EMU_MUTATION=name[,name...]): whether a
// named mutation is switched on. Production builds never call it (DT_MUTATION
// in kernels/cuda/cuda_common.cuh is false there).
bool mutation(const char* name);

}  // namespace emu
