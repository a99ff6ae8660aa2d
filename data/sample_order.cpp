// A balanced Feistel network on 2h bits (2^2h >= n) is a bijection on
// [0, 2^2h) whatever its round function; "cycle walking" (apply it again until
// the value lands below n) restricts it to a bijection on [0, n). Since
// 2^2h < 4n, the expected number of walks is under four.
#include "data/sample_order.hpp"

#include <bit>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace dt {
namespace {

constexpr int kRounds = 6;  // enough rounds that nearby indices land far apart

uint64_t feistel(uint64_t x, int half, uint64_t seed, uint64_t epoch) {
  const uint64_t mask = (uint64_t(1) << half) - 1;
  uint64_t left = x >> half, right = x & mask;
  for (int r = 0; r < kRounds; ++r) {
    // Round key: the epoch is the stream, (round, right half) the counter.
    uint64_t f = rng_bits(seed, epoch, (uint64_t(r) << 40) ^ right) & mask;
    uint64_t next = left ^ f;
    left = right;
    right = next;
  }
  return (left << half) | right;
}

}  // namespace

uint64_t sample_position(uint64_t index, uint64_t n, uint64_t seed, uint64_t epoch) {
  DT_CHECK(n >= 1 && index < n, "index ", index, " n ", n);
  if (n == 1) return 0;
  const int bits = std::bit_width(n - 1);  // values 0..n-1 need this many bits
  const int half = (bits + 1) / 2;
  uint64_t x = index;
  do {
    x = feistel(x, half, seed, epoch);
  } while (x >= n);
  return x;
}

}  // namespace dt
