// The PTX instructions of kernels/cuda/ptx.cuh on the host, as the PTX ISA
// documents them (kernels/cuda/ptx.cuh includes this under DIFFTRON_CUDA_EMULATION).
//
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 and
// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16 are warp-collective:
// every lane publishes its registers (or its row address) in the exchange
// buffer, the warp meets at the call's source line (all 32 lanes, as .aligned
// requires), and the first lane to resume computes, for every lane, what the
// ISA's fragment tables give it from the others' registers (ldmatrix: from
// shared memory as it is at the meeting). So a kernel that indexes a fragment
// the way the ISA does not document gets wrong numbers here, as on the GPU.
//
// cp.async.cg.shared.global (16 bytes, src-size 16 or 0), commit_group and
// wait_group N follow the asynchronous semantics: the destination is undefined
// from the issue until the thread's wait_group retires its group, so the
// emulation fills it with 0xFF (NaN) at the issue and copies the source only
// when wait_group retires the group. A read of the tile before the wait, or a
// copy issued into a tile other warps still read, shows as NaN.
//
// Not modelled: the tensor cores' internal accumulation order and precision
// (products and sums are plain fp32 in k order).
#pragma once
#include <cstdint>
#include <source_location>

#include "cuda_emulation.hpp"

namespace emu::ptx {

// acc (this lane's c0..c3) = A·B + acc, A 16×16 and B 16×8 bf16 in this lane's fragments.
void mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const std::source_location& site);

// r[0..num) = this lane's words of the num 8×8 b16 matrices whose rows lanes 8i..8i+7 address.
void ldmatrix(uint32_t* r, int num, bool trans, const void* row, const std::source_location& site);

// 16 bytes from global src to shared dst, or 16 zero bytes when !valid (src is then not read).
void cp_async_16(void* dst, const void* src, bool valid, const std::source_location& site);
void cp_async_commit();
// Retires this thread's committed groups until at most n are outstanding.
void cp_async_wait(int n, const std::source_location& site);

}  // namespace emu::ptx
