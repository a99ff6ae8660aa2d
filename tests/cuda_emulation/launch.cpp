// Kernel launches on the host (cuda_emulation.hpp): blocks one after another,
// the threads of a block as fibers on the calling thread, switched at barriers.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "cuda_emulation.hpp"
#include "emulated_runtime.hpp"
#include "fiber.hpp"
#include "memory.hpp"

// The static __shared__ arrays of every kernel: cuda_emulation.hpp puts them
// in this section, whose bounds the linker provides (weak: a program may have none).
extern "C" unsigned char __start_dt_emu_shared[] __attribute__((weak));
extern "C" unsigned char __stop_dt_emu_shared[] __attribute__((weak));

namespace emu {
namespace {

// ---- one block's fibers ------------------------------------------------------------
enum class State : uint8_t { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Fiber {
  Thread t;
  fiber::Context ctx;
  State state;
  void* asan_fake_stack = nullptr;  // AddressSanitizer's record of the fiber's stack (fiber.cpp)
};

struct Site {
  const char* file = "";
  unsigned line = 0;
  bool operator==(const Site& o) const { return line == o.line && (file == o.file || std::strcmp(file, o.file) == 0); }
  std::string str() const { return std::string(file) + ":" + std::to_string(line); }
};
Site site_of(const std::source_location& s) { return {s.file_name(), unsigned(s.line())}; }

struct Warp {
  unsigned lanes = 0, arrived = 0, exited = 0, ready = 0;
  Site site;
  uint64_t token = 0;
  const char* what = "";
};

struct Run {
  const char* kernel = "";
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  unsigned nthreads = 0, done = 0, block_arrived = 0;
  Site block_site;
  fiber::Context scheduler;
  Fiber* running = nullptr;
  Body body = nullptr;
  void* ctx = nullptr;
  std::string fault;  // non-empty: the launch failed
  std::vector<uint64_t> shfl[2];
  std::vector<uint64_t> xchg[2];  // the PTX instructions' exchange (ptx.cpp)
  unsigned char* smem = nullptr;  // this launch's dynamic shared memory
  size_t smem_bytes = 0;
};
Run run;
// DIFFTRON_EMU_BLOCK_ORDER_SEED, or set_block_order_seed (0: the fixed alternating order).
uint64_t block_order_seed = [] {
  const char* s = std::getenv("DIFFTRON_EMU_BLOCK_ORDER_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 0ull;
}();

struct FiberFault {
  std::string message;
};

std::string where(const Fiber& f) {
  const uint3 b = block_idx_now, t = f.t.tid;
  return "kernel " + std::string(run.kernel) + " block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," +
         std::to_string(b.z) + ") thread (" + std::to_string(t.x) + "," + std::to_string(t.y) + "," +
         std::to_string(t.z) + ")";
}

void yield(Fiber& f) { fiber::leave(f.ctx, run.scheduler, &f.asan_fake_stack, false); }

void set_state(Fiber& f, State s) {
  Warp& w = run.warps[f.t.warp];
  if (f.state == State::kReady) --w.ready;
  if (s == State::kReady) ++w.ready;
  f.state = s;
}

void release_block() {
  for (Fiber& f : run.fibers)
    if (f.state == State::kAtBlockBarrier) set_state(f, State::kReady);
  run.block_arrived = 0;
}

void release_warp(Warp& w, unsigned warp) {
  for (unsigned i = warp * 32; i < warp * 32 + w.lanes; ++i)
    if (run.fibers[i].state == State::kAtWarpBarrier) set_state(run.fibers[i], State::kReady);
  w.arrived = 0;
}

// Exited threads count as arrived at __syncthreads; a warp-synchronous
// operation still waiting for an exited lane can never complete.
void on_exit(Fiber& f) {
  set_state(f, State::kDone);
  ++run.done;
  Warp& w = run.warps[f.t.warp];
  ++w.exited;
  if (w.arrived > 0 && run.fault.empty())
    run.fault = where(f) + " exited while its warp waits in " + w.what + " at " + w.site.str();
  if (run.block_arrived > 0 && run.block_arrived + run.done == run.nthreads) release_block();
}

void fiber_main() {
  fiber::started();
  Fiber& f = *run.running;
  try {
    run.body(run.ctx);
  } catch (const FiberFault& e) {
    if (run.fault.empty()) run.fault = e.message;
  } catch (const std::exception& e) {
    if (run.fault.empty()) run.fault = where(f) + ": exception " + e.what();
  }
  on_exit(f);
  fiber::leave(f.ctx, run.scheduler, &f.asan_fake_stack, true);
  std::abort();  // a finished fiber is never resumed
}

std::string deadlock_report() {
  std::string s = "deadlock in kernel " + std::string(run.kernel) + ": no thread can proceed;";
  int shown = 0;
  for (const Fiber& f : run.fibers) {
    if (f.state == State::kDone || shown == 4) continue;
    ++shown;
    const Warp& w = run.warps[f.t.warp];
    s += " thread " + std::to_string(f.t.linear) +
         (f.state == State::kAtBlockBarrier ? " waits in __syncthreads at " + run.block_site.str()
                                            : " waits in " + std::string(w.what) + " at " + w.site.str());
    s += ";";
  }
  return s + " " + std::to_string(run.done) + " of " + std::to_string(run.nthreads) + " threads have exited";
}

// Depth first: the first warp in this block's order that has a runnable lane
// runs until every lane of it waits, so the first warp gets as far ahead of the
// others as the barriers allow and the last falls as far behind; the next
// block reverses the order. Lanes run one after another between warp barriers.
void run_block(bool descending) {
  const unsigned n = run.nthreads, nwarps = unsigned(run.warps.size());
  for (unsigned w = 0; w < nwarps; ++w) run.warps[w] = Warp{std::min(32u, n - w * 32), 0, 0, 0, {}, 0, ""};
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = run.fibers[i];
    const unsigned bx = block_dim_now.x, by = block_dim_now.y;
    f.t = Thread{make_uint3(i % bx, i / bx % by, i / (bx * by)), i, i % 32, i / 32, 0, 0, {}, {}};
    f.state = State::kDone;  // (counted ready just below)
    f.asan_fake_stack = nullptr;
    set_state(f, State::kReady);
    fiber::make(f.ctx, i, fiber_main);
  }
  run.done = run.block_arrived = 0;
  // NaN as f32 and bf16, so reads of shared memory the block has not written show.
  std::memset(run.smem, 0xFF, run.smem_bytes);
  if (__start_dt_emu_shared)
    std::memset(__start_dt_emu_shared, 0xFF, size_t(__stop_dt_emu_shared - __start_dt_emu_shared));
  while (run.done < n && run.fault.empty()) {
    unsigned w = nwarps;
    for (unsigned k = 0; k < nwarps && w == nwarps; ++k)
      if (run.warps[descending ? nwarps - 1 - k : k].ready > 0) w = descending ? nwarps - 1 - k : k;
    if (w == nwarps) {
      run.fault = deadlock_report();
      break;
    }
    const unsigned lanes = run.warps[w].lanes;
    for (unsigned k = 0; k < lanes && run.fault.empty(); ++k) {
      Fiber& f = run.fibers[w * 32 + (descending ? lanes - 1 - k : k)];
      if (f.state != State::kReady) continue;
      run.running = &f;
      cur = &f.t;
      fiber::enter(run.scheduler, f.ctx, f.t.linear);
    }
  }
  cur = nullptr;
  run.running = nullptr;
}

std::string dims(dim3 d) {
  std::string s = "(";  // (built up in steps: GCC 12 misreports "(" + std::string as overlapping)
  s += std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
  return s;
}

// The launch-time checks of the CUDA runtime; an empty string when the configuration is valid.
std::string config_error(const void* kernel, dim3 grid, dim3 block, size_t smem) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    return "invalid block " + dims(block) + " (at most 1024 threads, z at most 64)";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    return "invalid grid " + dims(grid);
  if (smem > kMaxOptInSmem)
    return std::to_string(smem) + " bytes of dynamic shared memory exceed the sm_80 limit " +
           std::to_string(kMaxOptInSmem);
  if (smem > kDefaultSmem && opted_in_smem(kernel) < smem)
    return std::to_string(smem) +
           " bytes of dynamic shared memory need cudaFuncSetAttribute("
           "cudaFuncAttributeMaxDynamicSharedMemorySize) first (opted in: " +
           std::to_string(opted_in_smem(kernel)) + ")";
  return "";
}

}  // namespace

void block_barrier(const std::source_location& s) {
  Fiber& f = *run.running;
  const Site site = site_of(s);
  if (run.block_arrived == 0) run.block_site = site;
  else if (!(site == run.block_site))
    fault("divergent __syncthreads: other threads wait at " + run.block_site.str(), s);
  ++run.block_arrived;
  if (run.block_arrived + run.done == run.nthreads) return release_block();
  set_state(f, State::kAtBlockBarrier);
  yield(f);
}

void warp_barrier(const std::source_location& s, uint64_t token, const char* what) {
  Fiber& f = *run.running;
  Warp& w = run.warps[f.t.warp];
  const Site site = site_of(s);
  if (w.exited > 0) fault(std::string(what) + " in a warp with exited lanes", s);
  if (w.arrived == 0) {
    w.site = site, w.token = token, w.what = what;
  } else if (!(site == w.site)) {
    fault(std::string("diverged warp: other lanes wait in ") + w.what + " at " + w.site.str(), s);
  } else if (token != w.token) {
    fault(std::string("diverged warp: lanes reach ") + what + " with different tokens", s);
  }
  if (++w.arrived == w.lanes) return release_warp(w, f.t.warp);
  set_state(f, State::kAtWarpBarrier);
  yield(f);
}

void fault(const std::string& what, const std::source_location& s) {
  throw FiberFault{where(*run.running) + " at " + site_of(s).str() + ": " + what};
}

void set_block_order_seed(uint64_t seed) { block_order_seed = seed; }

namespace {

// One launch, on the device's worker thread.
void run_grid(const char* name, dim3 grid, dim3 block, size_t smem_bytes, Body body, void* ctx) {
  static uint64_t launches = 0;
  const uint64_t launch_index = launches++;
  const bool odd_launch = launch_index % 2 == 1;
  run.kernel = name;
  run.body = body;
  run.ctx = ctx;
  run.fault.clear();
  run.nthreads = block.x * block.y * block.z;
  run.fibers.resize(run.nthreads);
  run.warps.resize((run.nthreads + 31) / 32);
  for (auto& b : run.shfl) b.assign(run.nthreads, 0);
  shfl_buf_now[0] = run.shfl[0].data();
  shfl_buf_now[1] = run.shfl[1].data();
  for (auto& b : run.xchg) b.assign(size_t(run.nthreads) * kXchgWords, 0);
  xchg_buf_now[0] = run.xchg[0].data();
  xchg_buf_now[1] = run.xchg[1].data();
  run.smem = mem::shared_for_launch(smem_bytes);  // bytes past smem_bytes are a bounds fault
  run.smem_bytes = smem_bytes;
  dynamic_smem_now = run.smem;
  dynamic_smem_bytes_now = smem_bytes;
  grid_dim_now = grid;
  block_dim_now = block;
  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  // Seed 0: blocks ascending on even launches, descending on odd ones, lane
  // order alternating by block. Otherwise a permutation drawn from (seed,
  // launch), so an order-dependent result (float atomics) differs between seeds.
  std::vector<uint64_t> order;
  std::mt19937_64 rng(block_order_seed ^ (launch_index * 0x9E3779B97F4A7C15ull));
  if (block_order_seed != 0) {
    order.resize(nblocks);
    std::iota(order.begin(), order.end(), uint64_t(0));
    std::shuffle(order.begin(), order.end(), rng);
  }
  for (uint64_t k = 0; k < nblocks && run.fault.empty(); ++k) {
    const uint64_t b = block_order_seed != 0 ? order[k] : odd_launch ? nblocks - 1 - k : k;
    block_idx_now = make_uint3(unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / grid.x / grid.y));
    run_block(block_order_seed != 0 ? (rng() & 1) == 1 : (b + (odd_launch ? 1 : 0)) % 2 == 1);
  }
  if (!run.fault.empty()) op_fault(run.fault);
}

}  // namespace

void submit_grid(const char* name, cudaStream_t stream, const void* kernel, dim3 grid, dim3 block,
                 size_t smem_bytes, Body body, std::shared_ptr<void> ctx) {
  const std::string bad = config_error(kernel, grid, block, smem_bytes);
  if (!bad.empty()) {
    record_error(cudaErrorInvalidConfiguration,
                 "launch of " + std::string(name) + " " + dims(grid) + "×" + dims(block) + ": " + bad);
    return;
  }
  enqueue(stream, std::string("kernel ") + name, [=] {
    run_grid(name, grid, block, smem_bytes, body, ctx.get());
    return Progress::kDone;
  });
}

}  // namespace emu
