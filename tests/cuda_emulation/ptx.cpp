// The PTX warp-level matrix and async-copy instructions (ptx.hpp). The
// fragment tables are the PTX ISA's ("Matrix Fragments for mma.m16n8k16 with
// floating point type", "Warp-level matrix load instruction: ldmatrix"), with
// groupID = lane / 4 and threadID_in_group = lane % 4; two b16 elements share
// a .b32 register, the lower-indexed one in the low half.
#include "ptx.hpp"

#include <cstring>
#include <string>

#include "memory.hpp"

// The static __shared__ arrays' section (launch.cpp).
extern "C" unsigned char __start_dt_emu_shared[] __attribute__((weak));
extern "C" unsigned char __stop_dt_emu_shared[] __attribute__((weak));

namespace emu::ptx {

namespace {

float bf16_bits_to_float(uint32_t bits16) {
  const uint32_t f = bits16 << 16;
  float x;
  std::memcpy(&x, &f, sizeof x);
  return x;
}
// Element `half` (0: low) of a .b32 register holding two b16 values.
uint32_t half_of(uint32_t word, int half) { return half == 0 ? word & 0xffffu : word >> 16; }

// The warp's exchange slots for this instruction: publish kXchgWords words, meet.
// Returns the first slot of lane 0 of this warp. Consecutive instructions
// alternate buffers, so one barrier suffices (as for shuffles).
uint64_t* exchange(const uint64_t (&mine)[kXchgWords], const std::source_location& site, const char* what) {
  check_full_mask(0xffffffffu, site);
  Thread& t = *cur;
  uint64_t* buf = xchg_buf_now[t.xchg_count++ % 2];
  std::memcpy(buf + size_t(t.linear) * kXchgWords, mine, sizeof mine);
  warp_barrier(site, 0, what);
  return buf + size_t(t.warp) * 32 * kXchgWords;
}

bool in_shared(const void* p, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  if (b >= dynamic_smem_now && b + bytes <= dynamic_smem_now + dynamic_smem_bytes_now) return true;
  return __start_dt_emu_shared && b >= __start_dt_emu_shared && b + bytes <= __stop_dt_emu_shared;
}

void check_shared_16(const void* p, const char* what, const std::source_location& site) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
    fault(std::string(what) + ": shared address not 16-byte aligned", site);
  if (!in_shared(p, 16)) fault(std::string(what) + ": address outside the block's shared memory", site);
}

void perform(const AsyncCopy& c) {
  if (!c.src) {
    std::memset(c.dst, 0, c.bytes);
    return;
  }
  mem::check(c.src, c.bytes, false);  // bounds and ordering against other streams, as the kernel's loads
  std::memcpy(c.dst, c.src, c.bytes);
}


// The warp's product, computed once by the first lane to resume after the
// meeting and left in each lane's slot (words 0-1: its four results); word 5 of
// lane 0 marks the meeting it was computed for.
void warp_product(uint64_t* warp, uint64_t generation) {
  // Register j of lane l: a0..a3 in words 0-1, b0, b1 in word 2, c0..c3 in words 3-4.
  auto word = [&](unsigned lane, unsigned j) {
    const uint64_t w = warp[size_t(lane) * kXchgWords + j / 2];
    return uint32_t(j % 2 == 0 ? w : w >> 32);
  };
  // A (16×16, row): element (r, k) is lane (r % 8)·4 + (k % 8)/2, register (r / 8) +
  // 2·(k / 8), half k % 2. B (16×8, col): element (k, n) is lane n·4 + (k % 8)/2,
  // register k / 8, half k % 2.
  float A[16][16], B[16][8];
  for (unsigned r = 0; r < 16; ++r)
    for (unsigned k = 0; k < 16; ++k)
      A[r][k] = bf16_bits_to_float(half_of(word((r % 8) * 4 + (k % 8) / 2, r / 8 + 2 * (k / 8)), int(k % 2)));
  for (unsigned k = 0; k < 16; ++k)
    for (unsigned n = 0; n < 8; ++n) B[k][n] = bf16_bits_to_float(half_of(word(n * 4 + (k % 8) / 2, 4 + k / 8), int(k % 2)));
  // C/D (16×8): c_i of lane l is row l/4 + 8·(i / 2), column 2·(l % 4) + i % 2.
  float D[32][4];
  for (unsigned lane = 0; lane < 32; ++lane)
    for (unsigned i = 0; i < 4; ++i) {
      const unsigned row = lane / 4 + 8 * (i / 2), col = 2 * (lane % 4) + i % 2;
      const uint32_t cbits = word(lane, 6 + i);
      float s;
      std::memcpy(&s, &cbits, sizeof s);
      for (unsigned k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      D[lane][i] = s;
    }
  for (unsigned lane = 0; lane < 32; ++lane) std::memcpy(warp + size_t(lane) * kXchgWords, D[lane], sizeof D[lane]);
  warp[5] = generation;
}

}  // namespace

void mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const std::source_location& site) {
  uint32_t cbits[4];
  std::memcpy(cbits, acc, sizeof cbits);
  const uint64_t generation = cur->xchg_count + 1;  // this meeting, the same in every lane
  const uint64_t mine[kXchgWords] = {a[0] | uint64_t(a[1]) << 32, a[2] | uint64_t(a[3]) << 32,
                                     b[0] | uint64_t(b[1]) << 32, cbits[0] | uint64_t(cbits[1]) << 32,
                                     cbits[2] | uint64_t(cbits[3]) << 32, 0};
  uint64_t* warp = exchange(mine, site, "mma.sync");
  if (warp[5] != generation) warp_product(warp, generation);
  std::memcpy(acc, warp + size_t(cur->lane) * kXchgWords, sizeof acc);
}

void ldmatrix(uint32_t* r, int num, bool trans, const void* row, const std::source_location& site) {
  if (num != 1 && num != 2 && num != 4) fault("ldmatrix: .num must be x1, x2 or x4", site);
  const uint64_t generation = cur->xchg_count + 1;
  const uint64_t mine[kXchgWords] = {reinterpret_cast<uintptr_t>(row), 0, 0, 0, 0, 0};
  uint64_t* warp = exchange(mine, site, "ldmatrix");
  // The first lane to resume reads shared memory for the whole warp, so every
  // lane sees it as it was at the meeting (as the hardware reads before any
  // later store of the warp); results go to words 1-2 of each lane's slot.
  if (warp[5] != generation) {
    // Row q of matrix i is addressed by lane 8i + q (the other lanes' addresses are unused).
    auto row_of = [&](int i, unsigned q) {
      const void* p = reinterpret_cast<const void*>(warp[size_t(8 * i + q) * kXchgWords]);
      check_shared_16(p, "ldmatrix", site);
      return static_cast<const uint16_t*>(p);
    };
    uint32_t res[32][4] = {};
    for (unsigned lane = 0; lane < 32; ++lane)
      for (int i = 0; i < num; ++i) {
        uint32_t lo, hi;
        if (!trans) {  // row lane/4, elements 2·(lane%4) and +1
          const uint16_t* p = row_of(i, lane / 4);
          lo = p[2 * (lane % 4)], hi = p[2 * (lane % 4) + 1];
        } else {  // the transpose: column lane/4 of rows 2·(lane%4) and +1
          lo = row_of(i, 2 * (lane % 4))[lane / 4];
          hi = row_of(i, 2 * (lane % 4) + 1)[lane / 4];
        }
        res[lane][i] = lo | hi << 16;
      }
    for (unsigned lane = 0; lane < 32; ++lane) std::memcpy(warp + size_t(lane) * kXchgWords + 1, res[lane], 16);
    warp[5] = generation;
  }
  std::memcpy(r, warp + size_t(cur->lane) * kXchgWords + 1, sizeof(uint32_t) * size_t(num));
}

void cp_async_16(void* dst, const void* src, bool valid, const std::source_location& site) {
  check_shared_16(dst, "cp.async", site);
  if (valid && reinterpret_cast<uintptr_t>(src) % 16 != 0) fault("cp.async: global address not 16-byte aligned", site);
  auto* d = static_cast<unsigned char*>(dst);
  std::memset(d, 0xFF, 16);  // undefined until the wait
  cur->cp_open.push_back({d, valid ? static_cast<const unsigned char*>(src) : nullptr, 16});
}

void cp_async_commit() {
  Thread& t = *cur;
  t.cp_groups.push_back(std::move(t.cp_open));
  t.cp_open.clear();
}

void cp_async_wait(int n, const std::source_location& site) {
  if (n < 0) fault("cp.async.wait_group with a negative count", site);
  Thread& t = *cur;
  while (t.cp_groups.size() > size_t(n)) {
    for (const AsyncCopy& c : t.cp_groups.front()) perform(c);
    t.cp_groups.erase(t.cp_groups.begin());
  }
}

}  // namespace emu::ptx
