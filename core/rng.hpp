// Counter-based random numbers: a value is a pure function of
// (seed, stream, index), so any shard of a tensor can draw its own elements
// and every parallel layout starts from the same weights.
#pragma once
#include <cstdint>
#include <string_view>

namespace dt {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a: turns a parameter name into a stream id.
inline uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

inline uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(seed ^ splitmix64(stream)) + index);
}

// Uniform in (0, 1): 53 random bits, never exactly 0.
double uniform_at(uint64_t seed, uint64_t stream, uint64_t index);
// Standard normal by Box-Muller over two independent uniforms.
double normal_at(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace dt
