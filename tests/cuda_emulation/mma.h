// nvcuda::wmma on the host (cuda_emulation.hpp), for the one shape the kernels
// use: 16×16×16 with bf16 A and B and an fp32 accumulator. Found before the
// toolkit's <mma.h> on the emulation build's include path.
//
// Semantics as documented in the CUDA C++ Programming Guide (warp matrix
// functions): load_matrix_sync reads a 16×16 tile whose element (r, c) is at
// p[r·ldm + c] (row-major) or p[r + c·ldm] (col-major); p must be 256-bit
// aligned and ldm a multiple of 16 bytes; mma_sync computes D = A·B + C; every
// call is made by all lanes of the warp. The hardware fragment layout is not
// modelled: lane l owns accumulator elements e = l + 32j (row l/16 + 2j, column
// l % 16), so it loads the 8 A rows and the B column those need. A lane that
// skips a call therefore leaves its elements wrong, and store_matrix_sync
// meets the warp and checks its lanes made the same number of wmma calls.
#pragma once
#include <cuda_bf16.h>

#include <source_location>
#include <type_traits>

#include "cuda_emulation.hpp"
#include "emulated_runtime.hpp"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulated wmma supports 16x16x16 only");
  static_assert(std::is_same_v<Use, accumulator> ? std::is_same_v<T, float> : std::is_same_v<T, __nv_bfloat16>,
                "the emulated wmma supports bf16 A/B fragments and f32 accumulators only");

 public:
  // matrix_a: this lane's 8 rows; matrix_b: its column (in row 0); accumulator: its 8 elements (row 0).
  float v[8][16];
};

namespace detail {

inline unsigned lane() { return emu::cur->lane; }
inline unsigned my_row(int j) { return lane() / 16 + 2 * unsigned(j); }
inline unsigned my_col() { return lane() % 16; }

// The documented requirements, plus: the tile lies in dynamic shared memory or device memory.
template <typename T>
void check_tile(const T* p, unsigned ldm, const std::source_location& site) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) emu::fault("wmma pointer not 256-bit aligned", site);
  if (ldm * sizeof(T) % 16 != 0) emu::fault("wmma ldm not a multiple of 16 bytes", site);
  const size_t bytes = (size_t(15) * ldm + 16) * sizeof(T);
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  const bool in_smem = b >= emu::dynamic_smem_now && b + bytes <= emu::dynamic_smem_now + emu::dynamic_smem_bytes_now;
  if (!in_smem && !emu::in_device_allocation(p, bytes))
    emu::fault("wmma tile outside the dynamic shared memory and device allocations", site);
  ++emu::cur->wmma_ops;
}

}  // namespace detail

template <typename Layout>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p, unsigned ldm,
                      const std::source_location& site = std::source_location::current()) {
  static_assert(std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>);
  detail::check_tile(p, ldm, site);
  for (int j = 0; j < 8; ++j)
    for (unsigned k = 0; k < 16; ++k) {
      const unsigned r = detail::my_row(j);
      f.v[j][k] = __bfloat162float(std::is_same_v<Layout, row_major> ? p[r * ldm + k] : p[r + k * ldm]);
    }
}

template <typename Layout>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p, unsigned ldm,
                      const std::source_location& site = std::source_location::current()) {
  static_assert(std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>);
  detail::check_tile(p, ldm, site);
  const unsigned c = detail::my_col();
  for (unsigned k = 0; k < 16; ++k)
    f.v[0][k] = __bfloat162float(std::is_same_v<Layout, row_major> ? p[k * ldm + c] : p[k + c * ldm]);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l,
                             const std::source_location& site = std::source_location::current()) {
  detail::check_tile(p, ldm, site);
  const unsigned c = detail::my_col();
  for (int j = 0; j < 8; ++j) {
    const unsigned r = detail::my_row(j);
    f.v[0][j] = l == mem_row_major ? p[r * ldm + c] : p[r + c * ldm];
  }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l,
                              const std::source_location& site = std::source_location::current()) {
  detail::check_tile(p, ldm, site);
  emu::warp_barrier(site, emu::cur->wmma_ops, "wmma::store_matrix_sync");
  const unsigned c = detail::my_col();
  for (int j = 0; j < 8; ++j) {
    const unsigned r = detail::my_row(j);
    (l == mem_row_major ? p[r * ldm + c] : p[r + c * ldm]) = f.v[0][j];
  }
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float value) {
  for (int j = 0; j < 8; ++j) f.v[0][j] = value;
}

// D = A·B + C in fp32 for this lane's elements; d may alias c.
template <typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB>& b,
              const fragment<accumulator, 16, 16, 16, float>& c) {
  ++emu::cur->wmma_ops;
  for (int j = 0; j < 8; ++j) {
    float s = c.v[0][j];
    for (int k = 0; k < 16; ++k) s += a.v[j][k] * b.v[0][k];
    d.v[0][j] = s;
  }
}

}  // namespace nvcuda::wmma
