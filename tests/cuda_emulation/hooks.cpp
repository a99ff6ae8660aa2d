// The kernel sources (kernels/cuda/*.cu) are compiled for the emulation with
// -fsanitize=thread but linked without ThreadSanitizer's runtime: the
// compiler's instrumentation calls these functions on every load and store,
// and the emulation routes them to the race detector and bounds checks of
// memory.cpp. Nothing else of ThreadSanitizer is used (the kernels' threads
// are fibers, synchronised by the emulated barriers). The aligned hooks also
// fault a misaligned address, as the GPU does (memory.hpp: kernel_access_aligned).
#include <cstddef>
#include <cstdint>

#include "memory.hpp"

using emu::mem::kernel_access;
using emu::mem::kernel_access_aligned;

namespace emu {
void vector_access(const void* p, size_t bytes, bool write) { kernel_access_aligned(p, bytes, write); }
}  // namespace emu

extern "C" {

void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void*) {}
void __tsan_vptr_update(void*, void*) {}
void __tsan_vptr_read(void*) {}

#define DT_TSAN_ACCESS(n)                                                          \
  void __tsan_read##n(void* p) { kernel_access_aligned(p, n, false); }             \
  void __tsan_write##n(void* p) { kernel_access_aligned(p, n, true); }             \
  void __tsan_unaligned_read##n(void* p) { kernel_access(p, n, false); }           \
  void __tsan_unaligned_write##n(void* p) { kernel_access(p, n, true); }           \
  void __tsan_read##n##_pc(void* p, void*) { kernel_access_aligned(p, n, false); } \
  void __tsan_write##n##_pc(void* p, void*) { kernel_access_aligned(p, n, true); }
DT_TSAN_ACCESS(1)
DT_TSAN_ACCESS(2)
DT_TSAN_ACCESS(4)
DT_TSAN_ACCESS(8)
DT_TSAN_ACCESS(16)
#undef DT_TSAN_ACCESS

void __tsan_read_range(void* p, long n) { kernel_access(p, size_t(n), false); }
void __tsan_write_range(void* p, long n) { kernel_access(p, size_t(n), true); }

// Atomic accesses of host code in the kernel sources (guard variables of
// function-local statics, shared_ptr counts): performed for real, not tracked.
unsigned char __tsan_atomic8_load(const volatile void* a, int) {
  return __atomic_load_n(static_cast<const volatile unsigned char*>(a), __ATOMIC_SEQ_CST);
}
void __tsan_atomic8_store(volatile void* a, unsigned char v, int) {
  __atomic_store_n(static_cast<volatile unsigned char*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned __tsan_atomic32_load(const volatile void* a, int) {
  return __atomic_load_n(static_cast<const volatile unsigned*>(a), __ATOMIC_SEQ_CST);
}
void __tsan_atomic32_store(volatile void* a, unsigned v, int) {
  __atomic_store_n(static_cast<volatile unsigned*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned long __tsan_atomic64_load(const volatile void* a, int) {
  return __atomic_load_n(static_cast<const volatile unsigned long*>(a), __ATOMIC_SEQ_CST);
}
void __tsan_atomic64_store(volatile void* a, unsigned long v, int) {
  __atomic_store_n(static_cast<volatile unsigned long*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned long __tsan_atomic64_fetch_add(volatile void* a, unsigned long v, int) {
  return __atomic_fetch_add(static_cast<volatile unsigned long*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned __tsan_atomic32_fetch_add(volatile void* a, unsigned v, int) {
  return __atomic_fetch_add(static_cast<volatile unsigned*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned __tsan_atomic32_fetch_sub(volatile void* a, unsigned v, int) {
  return __atomic_fetch_sub(static_cast<volatile unsigned*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned long __tsan_atomic64_fetch_sub(volatile void* a, unsigned long v, int) {
  return __atomic_fetch_sub(static_cast<volatile unsigned long*>(a), v, __ATOMIC_SEQ_CST);
}
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

}  // extern "C"
