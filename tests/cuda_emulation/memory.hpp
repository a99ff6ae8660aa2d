// Emulated device memory and its race detector (memory.cpp).
//
// Device allocations, pinned host allocations and the running kernel's dynamic
// shared memory are carved from one reserved address range. Every 4-byte
// granule of it has a kind (unallocated, device, pinned, shared) and a shadow
// cell holding the last op that wrote it and the ops that read it since. An
// access by an op (kernel accesses arrive through the ThreadSanitizer
// instrumentation hooks of the kernel sources, see hooks.cpp; copies, cuBLASLt
// and NCCL declare theirs) is checked against that history with vector
// clocks: if an earlier conflicting access is not ordered before it (stream
// order, an event wait, a host synchronisation), it is a race, reported with
// the buffer and both operations. An access to an unallocated granule (past an
// allocation's end, freed memory, past the dynamic shared memory) is a bounds
// fault of the running op.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace emu {

// Agent 0 is the host thread; each stream is one agent.
constexpr int kMaxAgents = 64;
using VectorClock = std::array<uint32_t, kMaxAgents>;

inline void join(VectorClock& into, const VectorClock& other) {
  for (int i = 0; i < kMaxAgents; ++i)
    if (other[i] > into[i]) into[i] = other[i];
}

// Who is accessing memory: an op (or the host) with the clock that says which
// other ops happened before it.
struct Accessor {
  uint32_t id = 0;      // unique per op in this process (0: none)
  int agent = 0;        // stream agent, or 0 for the host
  uint32_t clock = 0;   // this op's position in its agent's order
  const VectorClock* vc = nullptr;
  const char* name = "";     // "kernel rmsnorm_forward_kernel", "cudaMemcpyAsync HtoD", …
  const char* stream = "";   // "legacy default stream", "stream 3 (non-blocking)", "host"
};

namespace mem {

enum class Kind : uint8_t { kNone = 0, kDevice = 1, kPinned = 2, kShared = 3 };

// Allocations: 256-byte aligned, followed by an unallocated gap, filled with
// 0xFF (NaN as f32 and bf16, as garbage in fresh device memory). nullptr when
// the reserved range is exhausted.
void* allocate(size_t bytes, Kind kind);
// Frees an allocation of that kind; false if p is not one.
bool release(void* p, Kind kind);
bool inside(const void* p, size_t bytes, Kind kind);
// The kind of the granule at q (q inside the reserved range).
Kind kind_of(const unsigned char* q);
// "allocation #12 (4096 B device memory at 0x…), bytes [64, 68)" or "host memory at 0x…".
std::string describe(const void* p, size_t bytes);

// The dynamic shared memory of the kernel about to run: exactly `bytes` valid.
unsigned char* shared_for_launch(size_t bytes);

// The op running on this thread (the device thread); its accesses are checked.
void begin_op(const Accessor& a);
void end_op();
const Accessor* current();

// Checks [p, p + bytes) for the current op (or `a`), recording the access.
// Memory outside the reserved range (pageable host memory, kernel locals) is
// not tracked. Reports go to report_race / report_fault (device.cpp).
void check(const void* p, size_t bytes, bool write);
void check_as(const Accessor& a, const void* p, size_t bytes, bool write);
// A load or store of a kernel (hooks.cpp): checked when an op runs on this
// thread; inline, since it runs on every access of every emulated kernel.
namespace fast {
// Who touched a 4-byte granule last: the op that wrote it and up to two ops
// that read it since (more concurrent readers spill into a side table);
// stamp = id·2 + wrote of the last op that touched it, so an op's repeated
// accesses to a granule cost one compare.
struct Cell {
  uint32_t w, r0, r1, stamp;
};
extern Cell* cells;  // one per granule of [lo, hi)
extern thread_local const Accessor* running;
extern const unsigned char *lo, *hi;               // the tracked range
extern const unsigned char *shared, *shared_end;  // dynamic shared memory: the block, this launch's end
constexpr size_t kSharedBytes = size_t(256) << 10;
void shared_fault(const Accessor& a, const unsigned char* q, size_t bytes, bool write);
void check_range(const Accessor& a, const unsigned char* q, size_t bytes, bool write);
// An access whose address is not a multiple of its size: a fault of the
// running op when it is in device, pinned or shared memory (dynamic or static
// __shared__); elsewhere (kernel locals, parameters) the GPU would hold it in
// registers or local memory, which the emulation does not model.
void misaligned(const void* p, size_t bytes, bool write);
}  // namespace fast
inline void kernel_access(const void* p, size_t bytes, bool write) {
  const auto* q = static_cast<const unsigned char*>(p);
  if (q < fast::lo || q >= fast::hi) return;
  const Accessor* a = fast::running;
  if (!a) return;
  if (q >= fast::shared && q < fast::shared + fast::kSharedBytes) {
    if (q + bytes > fast::shared_end) fast::shared_fault(*a, q, bytes, write);
    return;
  }
  if ((reinterpret_cast<uintptr_t>(q) & 3) + bytes <= 4) {  // one granule, already seen by this op?
    const uint32_t stamp = fast::cells[size_t(q - fast::lo) >> 2].stamp;
    if (stamp == a->id * 2 + 1 || (!write && stamp == a->id * 2)) return;
  }
  fast::check_range(*a, q, bytes, write);
}
// A load or store the compiler emitted as naturally aligned (ThreadSanitizer's
// __tsan_readN/__tsan_writeN, n = 2, 4, 8, 16): the GPU faults when the
// address is not a multiple of n, x86 does not, so the check is here. The
// __tsan_unaligned_* hooks are accesses the code itself declares less aligned
// (a packed or 8-aligned 16-byte struct), which nvcc splits into aligned ones.
inline void kernel_access_aligned(const void* p, size_t bytes, bool write) {
  if (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) [[unlikely]]
    fast::misaligned(p, bytes, write);
  kernel_access(p, bytes, write);
}

}  // namespace mem

// Implemented by device.cpp: a race or fault found while an op (or the host) runs.
void report_race(const std::string& message);
void report_fault(const std::string& message);

}  // namespace emu
