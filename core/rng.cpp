#include "core/rng.hpp"

#include <cmath>

namespace dt {

double uniform_at(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t bits = rng_bits(seed, stream, index) >> 11;
  return (double(bits) + 0.5) * (1.0 / 9007199254740992.0);
}

double normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  double u1 = uniform_at(seed, stream, 2 * index);
  double u2 = uniform_at(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace dt
