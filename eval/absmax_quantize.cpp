#include "eval/absmax_quantize.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace dt {

void quantize_absmax(float* s, int64_t n, int bits) {
  DT_CHECK(bits >= 2 && bits <= 24, "bits ", bits);
  float mx = 0.f;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, std::fabs(s[j]));
  if (!(mx > 0.f)) return;
  const float levels = float((1 << (bits - 1)) - 1);
  const float scale = mx / levels;
  for (int64_t j = 0; j < n; ++j) s[j] = std::round(s[j] / scale) * scale;
}

}  // namespace dt
