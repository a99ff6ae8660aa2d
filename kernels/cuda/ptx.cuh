// Tensor-core fragments with a documented layout and asynchronous copies, as
// inline PTX (sm_80+), for the flash attention kernels. Unlike wmma's opaque
// fragments, the register-to-element mapping of these instructions is
// specified in the PTX ISA, so a kernel can keep S, P and O in registers:
//
//   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (g = lane/4, t = lane%4)
//     A 16×16: a[0] = (g, 2t..2t+1)  a[1] = (g+8, 2t..)  a[2] = (g, 2t+8..)  a[3] = (g+8, 2t+8..)
//     B 16×8:  b[0] = (k 2t..2t+1, n g)  b[1] = (k 2t+8.., n g)
//     C 16×8:  c[0..1] = (g, 2t..2t+1)  c[2..3] = (g+8, 2t..2t+1)
//   ldmatrix.sync.aligned.m8n8.x{2,4}[.trans].shared.b16: lanes 8i..8i+7 give the
//     row addresses of matrix i (16-byte aligned); r[i] = row g, columns 2t..2t+1
//     (.trans: column g, rows 2t..2t+1). So ldmatrix.x4 of a row-major 16×16 tile
//     is an A fragment when its matrices are taken row block fastest (rows 0-7 /
//     8-15, then columns 0-7 / 8-15), and a pair of B fragments of an [n][k] tile
//     when taken column block fastest ({r0, r1}: n rows 0-7, {r2, r3}: n rows 8-15);
//     .trans of a [k][n] tile, row block fastest, is a pair of B fragments too
//     (flash_attention.cuh: a_rows, b_pair, b_pair_trans).
//   cp.async.cg.shared.global 16 bytes (src-size 0: zero fill), commit_group, wait_group N.
//
// Under DIFFTRON_CUDA_EMULATION these are tests/cuda_emulation/ptx.cpp, which
// implements the same tables (and the copies' asynchrony) on the host.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#ifdef DIFFTRON_CUDA_EMULATION
#include "ptx.hpp"
#endif

namespace dt::cuda_ops::ptx {

// Two floats rounded to bf16 in one .b32 register, lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const uint32_t l = static_cast<__nv_bfloat16_raw>(__float2bfloat16(lo)).x;
  const uint32_t h = static_cast<__nv_bfloat16_raw>(__float2bfloat16(hi)).x;
  return l | h << 16;
}

#ifdef DIFFTRON_CUDA_EMULATION

inline void mma(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                const std::source_location& site = std::source_location::current()) {
  emu::ptx::mma_m16n8k16_bf16(acc, a, b, site);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* row,
                        const std::source_location& site = std::source_location::current()) {
  emu::ptx::ldmatrix(r, 4, false, row, site);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row,
                              const std::source_location& site = std::source_location::current()) {
  emu::ptx::ldmatrix(r, 4, true, row, site);
}
inline void cp_async_16(void* smem, const void* gmem, bool valid,
                        const std::source_location& site = std::source_location::current()) {
  emu::ptx::cp_async_16(smem, gmem, valid, site);
}
inline void cp_async_commit() { emu::ptx::cp_async_commit(); }
template <int N>
void cp_async_wait(const std::source_location& site = std::source_location::current()) {
  emu::ptx::cp_async_wait(N, site);
}

#else

// acc = A·B + acc
__device__ __forceinline__ void mma(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#endif

}  // namespace dt::cuda_ops::ptx
