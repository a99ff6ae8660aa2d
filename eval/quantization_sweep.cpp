#include "eval/quantization_sweep.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "eval/analysis_forward.hpp"
#include "eval/analysis_files.hpp"
#include "eval/needle_eval.hpp"
#include "eval/report/plot.hpp"

namespace dt {

std::vector<QuantizationPoint> evaluate_logit_quantization(const Transformer& model,
                                                           const std::vector<std::vector<int32_t>>& windows,
                                                           const std::vector<int>& bits,
                                                           const NeedleEvalOptions* needle, const Tokenizer* tok,
                                                           std::span<const int32_t> haystack) {
  if (windows.empty()) fail("logit quantization: no evaluation windows");
  DT_CHECK(!needle || tok, "needle retrieval needs a tokenizer");
  std::vector<int> widths{0};
  widths.insert(widths.end(), bits.begin(), bits.end());
  AnalysisForward af(model);
  std::vector<QuantizationPoint> pts;
  for (int b : widths) {
    QuantizationPoint p;
    p.bits = b;
    af.options().logit_bits = b;
    double nll = 0;
    int64_t tokens = 0;
    for (const std::vector<int32_t>& w : windows) {
      nll += af.loss_sum(w);
      tokens += int64_t(w.size()) - 1;
    }
    p.loss = nll / double(tokens);
    if (needle) {
      NeedleEvalOptions o = *needle;
      o.logit_bits = b;
      o.allocation = false;
      p.accuracy = evaluate_needles(model, *tok, haystack, o).mean_accuracy();
    }
    pts.push_back(p);
  }
  return pts;
}

void print_quantization(const std::vector<QuantizationPoint>& pts) {
  std::printf("attention-logit quantization (absmax per row of each head's logits):\n");
  std::printf("  %6s  %10s  %12s  %9s\n", "bits", "loss", "delta_loss", "retrieval");
  for (const QuantizationPoint& p : pts) {
    const std::string b = p.bits ? std::to_string(p.bits) : "fp32";
    std::printf("  %6s  %10.5f  %12.3e", b.c_str(), p.loss, p.loss - pts[0].loss);
    if (p.accuracy) std::printf("  %9.4f", *p.accuracy);
    std::printf("\n");
  }
}

std::vector<std::string> write_quantization(const std::string& out_dir, const std::vector<QuantizationPoint>& pts,
                                            const std::string& model_label) {
  DT_CHECK(!pts.empty() && pts[0].bits == 0, "the fp32 reference comes first");
  std::string csv = "bits,loss,delta_loss,retrieval_accuracy\n";
  char line[128];
  for (const QuantizationPoint& p : pts) {
    const std::string b = p.bits ? std::to_string(p.bits) : "fp32";
    std::snprintf(line, sizeof line, "%s,%.6f,%.6e,", b.c_str(), p.loss, p.loss - pts[0].loss);
    csv += line;
    if (p.accuracy) std::snprintf(line, sizeof line, "%.6f", *p.accuracy), csv += line;
    csv += "\n";
  }
  const std::string path = out_dir + "/quantization.csv";
  write_text_file(path, csv);
  std::vector<std::string> wrote{path};

  // Loss (or accuracy) against bits, with the unquantized value as a flat
  // reference line. The y range spans at least [lo, hi] so that rounding-level
  // differences draw as the flat lines they are, not as a zoomed-in zigzag.
  auto plot = [&](const std::string& file, const std::string& y_label, double lo_y, double hi_y, auto value) {
    LinePlot lp;
    lp.title = "Attention-logit quantization, " + model_label;
    lp.x_label = "Bits per attention logit";
    lp.y_label = y_label;
    Series q{"quantized", {}, {}, std::nullopt}, ref{"fp32 (not quantized)", {}, {}, std::nullopt};
    double lo = 1e300, hi = -1e300;
    for (size_t i = 1; i < pts.size(); ++i) {
      q.x.push_back(pts[i].bits), q.y.push_back(value(pts[i]));
      lo = std::min(lo, double(pts[i].bits)), hi = std::max(hi, double(pts[i].bits));
    }
    if (q.x.empty()) lo = 0, hi = 16;
    if (lo == hi) lo -= 1, hi += 1;
    ref.x = {lo, hi}, ref.y = {value(pts[0]), value(pts[0])};
    lp.x_min = lo, lp.x_max = hi;
    double y0 = lo_y, y1 = hi_y;
    for (const QuantizationPoint& p : pts)
      if (std::isfinite(value(p))) y0 = std::min(y0, value(p)), y1 = std::max(y1, value(p));
    lp.y_min = y0 - 0.05 * (y1 - y0), lp.y_max = y1 + 0.05 * (y1 - y0);
    ref.color = Color{130, 130, 130};
    q.color = palette_color(0);
    lp.series.push_back(std::move(ref));  // drawn first: the quantized line stays visible on top
    lp.series.push_back(std::move(q));
    lp.save(out_dir + "/" + file);
    wrote.push_back(out_dir + "/" + file);
  };
  const double ref = pts[0].loss;  // ±0.2% of the fp32 loss at least
  plot("quantization.png", "Loss (nats)", ref - 0.002 * std::abs(ref), ref + 0.002 * std::abs(ref),
       [](const QuantizationPoint& p) { return p.loss; });
  if (pts[0].accuracy)
    plot("quantization_retrieval.png", "Needle retrieval accuracy", 0.0, 1.0,
         [](const QuantizationPoint& p) { return p.accuracy.value_or(NAN); });
  return wrote;
}

}  // namespace dt
