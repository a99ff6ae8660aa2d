// The order samples are visited in: a seeded permutation of [0, n) per epoch,
// a pure function of (seed, epoch, index). Nothing is stored, so the loader's
// state is one number (samples consumed), resume is exact for any dp size, and
// concurrent calls are safe.
#pragma once
#include <cstdint>

namespace dt {

// The position that the index-th sample of epoch `epoch` reads, in [0, n).
// For fixed (n, seed, epoch) this is a bijection on [0, n); n must be >= 1.
uint64_t sample_position(uint64_t index, uint64_t n, uint64_t seed, uint64_t epoch);

}  // namespace dt
