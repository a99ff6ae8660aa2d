// User-level contexts ("fibers") for the emulated CUDA threads (launch.cpp):
// one host thread switches between them by hand, so a thread waiting at a
// barrier costs a few stores instead of an OS context switch.
#pragma once
#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu::fiber {

#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;  // the callee-saved registers are on the stack
};
#else
struct Context {
  ucontext_t uc;
};
#endif

// Stack i of a pool kept for the whole process: kStackBytes, with a guard page below.
constexpr size_t kStackBytes = size_t(256) << 10;
unsigned char* stack(size_t i);

// c starts entry() on stack i when first switched to; entry must never return.
void make(Context& c, size_t stack_index, void (*entry)());

// From the scheduler into a fiber on stack stack_index; returns when the fiber leaves.
void enter(Context& scheduler, Context& fiber, size_t stack_index);
// From a fiber back to the scheduler; returns when the fiber is entered again
// (never, when finished). asan_fake_stack: the fiber's own slot.
void leave(Context& fiber, Context& scheduler, void** asan_fake_stack, bool finished);
// The first call in a fiber's entry function.
void started();

}  // namespace emu::fiber
