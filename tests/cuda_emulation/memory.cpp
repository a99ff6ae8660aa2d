// Emulated device memory and the race detector (memory.hpp).
#include "memory.hpp"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

// The static __shared__ arrays of the kernels (cuda_emulation.hpp, launch.cpp).
extern "C" unsigned char __start_dt_emu_shared[] __attribute__((weak));
extern "C" unsigned char __stop_dt_emu_shared[] __attribute__((weak));

namespace emu::mem {
namespace {

constexpr size_t kRegionBytes = size_t(16) << 30;  // reserved, not committed
constexpr size_t kGranule = 4;
constexpr size_t kAlign = 256;
constexpr size_t kGap = 256;                          // unallocated bytes after every allocation
using fast::kSharedBytes;  // the dynamic shared memory block (≥ 227 KB)

using fast::Cell;
constexpr uint32_t kSpilled = 0xFFFFFFFFu;

struct History {
  uint32_t id, clock;
  int agent;
  const char* name;
  const char* stream;
};
constexpr size_t kHistory = size_t(1) << 18;  // older ops count as ordered

struct Allocation {
  size_t bytes;
  Kind kind;
  uint64_t serial;
};

struct Region {
  unsigned char* base = nullptr;
  Kind* kinds = nullptr;
  Cell* cells = nullptr;
  size_t top = 0;  // bump pointer (offset)
  std::multimap<size_t, size_t> free_blocks;            // span bytes → offset
  std::map<uintptr_t, Allocation> allocations;          // address → allocation
  uint64_t serial = 0;
  unsigned char* shared = nullptr;
  std::vector<History> history = std::vector<History>(kHistory);
  std::unordered_map<size_t, std::vector<uint32_t>> spill;  // granule → readers
  std::unordered_set<uint64_t> reported;                    // (earlier op, later op) pairs already reported
  uint32_t faulted = 0;                                     // the last op reported out of bounds
  // Everything above: held by the device thread while an op runs (its accesses
  // update cells), and by the host for allocations and its own accesses.
  std::recursive_mutex lock;

  Region() {
    auto map = [](size_t bytes) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        std::fprintf(stderr, "cuda emulation: cannot reserve %zu bytes of address space\n", bytes);
        std::abort();
      }
      return p;
    };
    base = static_cast<unsigned char*>(map(kRegionBytes));
    kinds = static_cast<Kind*>(map(kRegionBytes / kGranule));
    cells = static_cast<Cell*>(map(kRegionBytes / kGranule * sizeof(Cell)));
    shared = static_cast<unsigned char*>(allocate_span(kSharedBytes));
    set_kind(shared, kSharedBytes, Kind::kShared);
    fast::cells = cells;
    fast::lo = base;
    fast::hi = base + kRegionBytes;
    fast::shared = fast::shared_end = shared;
  }

  unsigned char* allocate_span(size_t bytes) {
    const size_t span = (bytes + kGap + kAlign - 1) / kAlign * kAlign;
    size_t off;
    auto it = free_blocks.lower_bound(span);
    if (it != free_blocks.end()) {
      off = it->second;
      if (it->first > span) free_blocks.emplace(it->first - span, off + span);
      free_blocks.erase(it);
    } else {
      if (top + span > kRegionBytes) return nullptr;
      off = top;
      top += span;
    }
    return base + off;
  }

  void set_kind(unsigned char* p, size_t bytes, Kind k) {
    const size_t g0 = size_t(p - base) / kGranule, n = (bytes + kGranule - 1) / kGranule;
    std::memset(kinds + g0, int(k), n);
    std::memset(cells + g0, 0, n * sizeof(Cell));
  }
};

Region& region() {
  static Region r;
  return r;
}

using fast::running;

// Whether the op recorded as `id` happened before the accessor (vector clock).
bool ordered(const Region& r, uint32_t id, const Accessor& a) {
  const History& h = r.history[id % kHistory];
  if (h.id != id) return true;  // too old to remember: long since ordered
  return h.clock <= (*a.vc)[h.agent];
}

std::string who(const Region& r, uint32_t id) {
  const History& h = r.history[id % kHistory];
  if (h.id != id) return "an earlier op";
  return std::string(h.name) + " (op #" + std::to_string(id) + " on " + h.stream + ")";
}

void race(Region& r, uint32_t earlier, const char* earlier_did, const Accessor& a, const char* now_does,
          const unsigned char* p) {
  const uint64_t pair = uint64_t(earlier) << 32 | a.id;  // one report per pair of operations
  if (r.reported.count(pair)) return;
  r.reported.insert(pair);
  report_race("race on " + describe(p, kGranule) + ": " + who(r, earlier) + " " + earlier_did + " it and " + a.name +
              " (op #" + std::to_string(a.id) + " on " + a.stream + ") " + now_does +
              " it with nothing ordering the two (a missing cudaStreamWaitEvent, event record or synchronisation)");
}

// Reads of granule g since its last write, for a write to check.
template <class F>
void for_each_reader(Region& r, const Cell& c, size_t g, F&& f) {
  if (c.r0 == kSpilled) {
    auto it = r.spill.find(g);
    if (it != r.spill.end())
      for (uint32_t id : it->second) f(id);
    return;
  }
  if (c.r0) f(c.r0);
  if (c.r1) f(c.r1);
}

void add_reader(Region& r, Cell& c, size_t g, const Accessor& a) {
  if (c.r0 == kSpilled) {
    auto& v = r.spill[g];
    std::erase_if(v, [&](uint32_t id) { return ordered(r, id, a); });  // a later read stands for them
    v.push_back(a.id);
    return;
  }
  if (c.r0 == a.id || c.r1 == a.id) return;
  if (!c.r0 || ordered(r, c.r0, a)) {
    c.r0 = a.id;
  } else if (!c.r1 || ordered(r, c.r1, a)) {
    c.r1 = a.id;
  } else {
    r.spill[g] = {c.r0, c.r1, a.id};
    c.r0 = c.r1 = kSpilled;
  }
}

void check_range(const Accessor& a, const unsigned char* p, size_t bytes, bool write) {
  Region& r = region();
  const size_t g0 = size_t(p - r.base) / kGranule, g1 = size_t(p + bytes - 1 - r.base) / kGranule;
  const uint32_t mark = a.id * 2 + (write ? 1 : 0), wrote = a.id * 2 + 1;
  for (size_t g = g0; g <= g1; ++g) {
    const Kind k = r.kinds[g];
    if (k == Kind::kShared) continue;
    if (k == Kind::kNone) {
      if (r.faulted == a.id) return;  // one report per op
      r.faulted = a.id;
      report_fault(std::string(a.name) + " " + (write ? "writes " : "reads ") + std::to_string(bytes) + " bytes at " +
                   describe(p, bytes) + ": outside every live allocation");
      return;
    }
    Cell& c = r.cells[g];
    if (c.stamp == mark || c.stamp == wrote) continue;
    const unsigned char* at = r.base + g * kGranule;
    if (c.w && c.w != a.id && !ordered(r, c.w, a)) race(r, c.w, "writes", a, write ? "writes" : "reads", at);
    if (!write) {
      add_reader(r, c, g, a);
      c.stamp = mark;
      continue;
    }
    for_each_reader(r, c, g, [&](uint32_t id) {
      if (id != a.id && !ordered(r, id, a)) race(r, id, "reads", a, "writes", at);
    });
    if (c.r0 == kSpilled) r.spill.erase(g);
    c.w = a.id;
    c.r0 = c.r1 = 0;
    c.stamp = wrote;
  }
}

void shared_fault(const Accessor& a, const unsigned char* q, size_t bytes, bool write) {
  Region& r = region();
  if (r.faulted == a.id) return;
  r.faulted = a.id;
  report_fault(std::string(a.name) + " " + (write ? "writes " : "reads ") + std::to_string(bytes) + " bytes at " +
               describe(q, bytes) + ": past the " + std::to_string(size_t(fast::shared_end - fast::shared)) +
               " bytes of dynamic shared memory the launch asked for");
}

void misaligned_fault(const Accessor& a, const unsigned char* q, size_t bytes, bool write, const std::string& where) {
  Region& r = region();
  if (r.faulted == a.id) return;
  r.faulted = a.id;
  char addr[32];
  std::snprintf(addr, sizeof addr, "%p", static_cast<const void*>(q));
  report_fault(std::string(a.name) + " " + (write ? "writes " : "reads ") + std::to_string(bytes) + " bytes at " +
               where + ": misaligned address " + addr + " (not a multiple of " + std::to_string(bytes) +
               ", as an access of that size must be on a GPU)");
}

void remember(const Accessor& a) {
  region().history[a.id % kHistory] = {a.id, a.clock, a.agent, a.name, a.stream};
}

}  // namespace

Kind kind_of(const unsigned char* q) { return region().kinds[size_t(q - region().base) / kGranule]; }

void* allocate(size_t bytes, Kind kind) {
  Region& r = region();
  std::lock_guard<std::recursive_mutex> g(r.lock);
  unsigned char* p = r.allocate_span(std::max<size_t>(bytes, 1));
  if (!p) return nullptr;
#if defined(__SANITIZE_ADDRESS__)
  // The emulation's instrumented host code (copies, cuBLASLt, NCCL) touching the
  // gap after an allocation or freed memory is reported by ASan too.
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
  ASAN_POISON_MEMORY_REGION(p + bytes, (bytes + kGap + kAlign - 1) / kAlign * kAlign - bytes);
#endif
  std::memset(p, 0xFF, bytes);
  r.set_kind(p, bytes, kind);
  r.allocations[uintptr_t(p)] = {bytes, kind, ++r.serial};
  return p;
}

bool release(void* p, Kind kind) {
  Region& r = region();
  std::lock_guard<std::recursive_mutex> g(r.lock);
  auto it = r.allocations.find(uintptr_t(p));
  if (it == r.allocations.end() || it->second.kind != kind) return false;
  const size_t bytes = std::max<size_t>(it->second.bytes, 1);
  auto* q = static_cast<unsigned char*>(p);
  r.set_kind(q, bytes, Kind::kNone);
  const size_t span = (bytes + kGap + kAlign - 1) / kAlign * kAlign;
  for (size_t g = size_t(q - r.base) / kGranule, e = g + (bytes + kGranule - 1) / kGranule; g < e; ++g) r.spill.erase(g);
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(q, span);
#endif
  r.free_blocks.emplace(span, size_t(q - r.base));
  r.allocations.erase(it);
  return true;
}

}  // namespace emu::mem

namespace emu {
// Lock-free: a granule's kind changes only when the host allocates or frees it.
bool is_device_memory(const void* p) {
  const auto* q = static_cast<const unsigned char*>(p);
  return q >= mem::fast::lo && q < mem::fast::hi && mem::kind_of(q) == mem::Kind::kDevice;
}
}  // namespace emu

namespace emu::mem {

bool inside(const void* p, size_t bytes, Kind kind) {
  Region& r = region();
  std::lock_guard<std::recursive_mutex> g(r.lock);
  auto it = r.allocations.upper_bound(uintptr_t(p));
  if (it == r.allocations.begin()) return false;
  --it;
  return it->second.kind == kind && uintptr_t(p) >= it->first &&
         uintptr_t(p) + bytes <= it->first + it->second.bytes;
}

std::string describe(const void* p, size_t bytes) {
  Region& r = region();
  char buf[160];
  const auto* q = static_cast<const unsigned char*>(p);
  if (q >= r.shared && q < r.shared + kSharedBytes) {
    std::snprintf(buf, sizeof buf, "dynamic shared memory, bytes [%zu, %zu)", size_t(q - r.shared),
                  size_t(q - r.shared) + bytes);
    return buf;
  }
  std::lock_guard<std::recursive_mutex> g(r.lock);
  auto it = r.allocations.upper_bound(uintptr_t(p));
  if (it == r.allocations.begin()) {
    std::snprintf(buf, sizeof buf, "%p (before every allocation)", p);
    return buf;
  }
  --it;
  const Allocation& a = it->second;
  const size_t off = uintptr_t(p) - it->first;
  const char* kind = a.kind == Kind::kPinned ? "pinned host" : "device";
  std::snprintf(buf, sizeof buf, "allocation #%llu (%zu B of %s memory at %p), bytes [%zu, %zu)",
                static_cast<unsigned long long>(a.serial), a.bytes, kind, reinterpret_cast<void*>(it->first), off,
                off + bytes);
  return buf;
}

unsigned char* shared_for_launch(size_t bytes) {
  Region& r = region();
  fast::shared_end = r.shared + bytes;  // the hook faults accesses in [end, block end)
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(r.shared, kSharedBytes);
  ASAN_UNPOISON_MEMORY_REGION(r.shared, bytes);
#endif
  return r.shared;
}

void begin_op(const Accessor& a) {
  region().lock.lock();
  remember(a);
  running = &a;
}
void end_op() {
  running = nullptr;
  region().lock.unlock();
}
const Accessor* current() { return running; }

void check(const void* p, size_t bytes, bool write) {
  if (running) check_as(*running, p, bytes, write);
}

void check_as(const Accessor& a, const void* p, size_t bytes, bool write) {
  Region& r = region();
  const auto* q = static_cast<const unsigned char*>(p);
  if (bytes == 0 || q < r.base || q >= r.base + kRegionBytes) return;
  std::lock_guard<std::recursive_mutex> g(r.lock);
  if (&a != running) remember(a);  // the host is not an op: record it here
  check_range(a, q, bytes, write);
}

// The hooks' slow paths (memory.hpp's inline kernel_access).
namespace fast {
thread_local const Accessor* running = nullptr;
Cell* cells = nullptr;
const unsigned char *lo = nullptr, *hi = nullptr, *shared = nullptr, *shared_end = nullptr;
void shared_fault(const Accessor& a, const unsigned char* q, size_t bytes, bool write) {
  mem::shared_fault(a, q, bytes, write);
}
void check_range(const Accessor& a, const unsigned char* q, size_t bytes, bool write) {
  mem::check_range(a, q, bytes, write);
}
void misaligned(const void* p, size_t bytes, bool write) {
  const Accessor* a = running;
  if (!a) return;
  const auto* q = static_cast<const unsigned char*>(p);
  if (q >= lo && q < hi) {
    if (kind_of(q) == Kind::kNone) return;  // the bounds check reports it
    mem::misaligned_fault(*a, q, bytes, write, describe(q, bytes));
  } else if (__start_dt_emu_shared && q >= __start_dt_emu_shared && q < __stop_dt_emu_shared) {
    mem::misaligned_fault(*a, q, bytes, write, "static shared memory");
  }
}
}  // namespace fast

}  // namespace emu::mem
