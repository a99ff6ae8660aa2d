// Dynamic absmax quantization of one row of attention logits, the primitive
// of the DIFF Transformer paper's low-bit study. The analysis forward
// (eval/analysis_forward.hpp) applies it to every causal row of a head's
// scores; the sweep over bit widths is eval/quantization_sweep.hpp.
#pragma once
#include <cstdint>

namespace dt {

// s (n) in place: scale = max|s| / (2^(bits−1) − 1), s ← round(s / scale) · scale.
// bits in [2, 24]; a row of zeros stays zero. Rounding is half away from zero.
void quantize_absmax(float* s, int64_t n, int bits);

}  // namespace dt
