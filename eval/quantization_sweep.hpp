// The attention-logit quantization sweep (the DIFF Transformer paper's
// low-bit study): loss and retrieval accuracy with every row of attention
// logits quantized (eval/absmax_quantize.hpp) inside the analysis forward
// (eval/analysis_forward.hpp), at each bit width.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace dt {

class Tokenizer;
struct NeedleEvalOptions;

struct QuantizationPoint {
  int bits = 0;                     // 0: no quantization (the fp32 reference)
  double loss = 0;                  // mean next-token NLL (nats) over the windows
  std::optional<double> accuracy;   // retrieval accuracy over the needle grid, when run
};

// Mean loss over `windows` (each T + 1 tokens) with no quantization and then
// at each bit width; with `needle` (and tokenizer, haystack), also the
// retrieval accuracy of the needle grid at each width.
std::vector<QuantizationPoint> evaluate_logit_quantization(
    const Transformer& model, const std::vector<std::vector<int32_t>>& windows, const std::vector<int>& bits,
    const NeedleEvalOptions* needle = nullptr, const Tokenizer* tok = nullptr,
    std::span<const int32_t> haystack = {});

// OUT/quantization.csv (bits,loss,delta_loss,retrieval_accuracy; the fp32 row
// has bits "fp32", accuracy empty when not run) and OUT/quantization.png (loss
// against bits, the fp32 loss as a reference line); with accuracies also
// OUT/quantization_retrieval.png. Returns the paths written.
std::vector<std::string> write_quantization(const std::string& out_dir, const std::vector<QuantizationPoint>& pts,
                                            const std::string& model_label);
void print_quantization(const std::vector<QuantizationPoint>& pts);

}  // namespace dt
