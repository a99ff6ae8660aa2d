// Fibers for the emulated CUDA threads (fiber.hpp): a hand-written stack
// switch on x86-64, ucontext elsewhere; AddressSanitizer is told about every
// change of stack, so a -fsanitize=address emulation build checks kernels'
// memory accesses without false reports.
#include "fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
// MPI, OpenMP and the tests' static caches hold memory until exit: only bounds matter here.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

#if defined(__x86_64__)
// emu_switch(save, load): pushes the callee-saved registers and the SSE/x87
// control words, stores the stack pointer in *save, continues on load.
extern "C" void emu_switch(void** save, void* load);
asm(R"(
  .text
  .globl emu_switch
  .type emu_switch, @function
emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size emu_switch, .-emu_switch
  .section .note.GNU-stack, "", @progbits
  .text
)");
#endif

namespace emu::fiber {
namespace {

#if defined(__x86_64__)
void switch_to(Context& save, Context& load) { emu_switch(&save.sp, load.sp); }
void init(Context& c, unsigned char* lo, void (*entry)()) {
  auto* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(lo + kStackBytes) & ~uintptr_t(15));
  *--sp = 0;                                  // entry's return address: it never returns
  *--sp = reinterpret_cast<uint64_t>(entry);  // where emu_switch's ret goes
  for (int r = 0; r < 6; ++r) *--sp = 0;      // rbp rbx r12 r13 r14 r15
  *--sp = uint64_t(0x037F) << 32 | 0x1F80;    // default x87 control word, MXCSR
  c.sp = sp;
}
#else
void switch_to(Context& save, Context& load) { swapcontext(&save.uc, &load.uc); }
void init(Context& c, unsigned char* lo, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = lo;
  c.uc.uc_stack.ss_size = kStackBytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

#if defined(__SANITIZE_ADDRESS__)
const void* scheduler_stack = nullptr;
size_t scheduler_stack_bytes = 0;
void* scheduler_fake_stack = nullptr;
#endif

}  // namespace

unsigned char* stack(size_t i) {
  static std::vector<unsigned char*> stacks;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  while (stacks.size() <= i) {
    void* p =
        mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "cuda emulation: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(p, page, PROT_NONE);  // an overflow crashes instead of corrupting the next stack
    stacks.push_back(static_cast<unsigned char*>(p) + page);
  }
  return stacks[i];
}

void make(Context& c, size_t stack_index, void (*entry)()) {
#if defined(__SANITIZE_ADDRESS__)
  // A reused stack still carries the redzones of the frames its last fiber left.
  ASAN_UNPOISON_MEMORY_REGION(stack(stack_index), kStackBytes);
#endif
  init(c, stack(stack_index), entry);
}

void enter(Context& scheduler, Context& fiber, size_t stack_index) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&scheduler_fake_stack, stack(stack_index), kStackBytes);
  switch_to(scheduler, fiber);
  __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#else
  (void)stack_index;
  switch_to(scheduler, fiber);
#endif
}

void leave(Context& fiber, Context& scheduler, void** asan_fake_stack, bool finished) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(finished ? nullptr : asan_fake_stack, scheduler_stack, scheduler_stack_bytes);
  switch_to(fiber, scheduler);
  __sanitizer_finish_switch_fiber(*asan_fake_stack, nullptr, nullptr);
#else
  (void)asan_fake_stack, (void)finished;
  switch_to(fiber, scheduler);
#endif
}

void started() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack, &scheduler_stack_bytes);
#endif
}

}  // namespace emu::fiber
