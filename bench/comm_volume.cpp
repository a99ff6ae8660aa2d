// Communication volume per optimizer step per rank, computed from the model
// shapes (no run needed), for the layouts of a config.
//
//   comm_volume [CONFIG (default configs/diff-3b.yaml)] [--act-bytes 2] [--grad-bytes 4]
//
// Model (ring collectives: an all-reduce of S bytes moves 2(n−1)/n·S per rank,
// a reduce-scatter or all-gather (n−1)/n·S):
//   dp:  gradients of this rank's parameters P/(tp·pp): all-reduce, or under
//        ZeRO-1 reduce-scatter of gradients + all-gather of parameters — the
//        same 2(dp−1)/dp·P/(tp·pp)·grad_bytes either way; independent of the batch.
//   tp:  per layer and micro-batch, 2 all-reduces of (b·T, D) activations in the
//        forward (after Wo and W2) and 2 of fp32 input gradients in the backward
//        (inputs of Wq/Wk/Wv and W1/W3, summed by the GEMMs in fp32), plus the
//        embedding (forward) and LM-head input (backward, fp32) all-reduces and
//        three (b·T) cross-entropy statistics on the last stage.
//   pp:  per micro-batch, one (b·T, D) activation sent forward and its gradient
//        sent back across each stage boundary (an interior stage sends both ways).
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "model/registry.hpp"

int main(int argc, char** argv) {
  std::string path = "configs/diff-3b.yaml";
  double act_bytes = 2, grad_bytes = 4;  // bf16 activations, fp32 gradient reduction
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--act-bytes" && i + 1 < argc) act_bytes = std::stod(argv[++i]);
    else if (a == "--grad-bytes" && i + 1 < argc) grad_bytes = std::stod(argv[++i]);
    else if (a == "--help") {
      std::puts("usage: comm_volume [CONFIG] [--act-bytes 2] [--grad-bytes 4]");
      return 0;
    } else path = a;
  }
  try {
    const dt::Config c = dt::load_config_file(path);
    const dt::ModelConfig& m = c.model;
    double P = 0;
    for (const dt::ParamSpec& p : dt::param_registry(m)) P += double(p.numel());
    const double T = c.train.seq_len, D = m.d_model, b = double(c.parallel.micro_batch_size);
    const double global_seqs = double(c.train.global_batch_size);
    std::printf("%s: %.3g parameters, L %d, D %d, T %d, %g sequences per step, micro-batch %g\n", path.c_str(), P,
                m.n_layers, m.d_model, c.train.seq_len, global_seqs, b);
    std::printf("activations %g bytes, gradients %g bytes per element; GB per step per rank:\n\n", act_bytes,
                grad_bytes);
    std::printf("%4s %4s %5s | %9s %9s %9s | %9s\n", "tp", "pp", "dp", "dp-grads", "tp-acts", "pp-p2p", "total");
    struct Layout {
      int tp, pp, dp;
    };
    for (Layout l : std::vector<Layout>{{1, 1, 64}, {2, 1, 64}, {4, 1, 32}, {8, 1, 16}, {2, 2, 64}, {2, 4, 32},
                                        {8, 4, 8}, {1, 4, 64}}) {
      const double micro_per_rank = global_seqs / (l.dp * b);  // micro-batches per rank per step
      const double dp_bytes = 2.0 * (l.dp - 1) / l.dp * P / (l.tp * l.pp) * grad_bytes;
      const double layers = double(m.n_layers) / l.pp;
      const double act = b * T * D * act_bytes, dln = b * T * D * 4.0;
      const double ring_ar = 2.0 * (l.tp - 1) / l.tp;
      const double tp_bytes = micro_per_rank * ring_ar * (2.0 * layers * (act + dln) + (act + dln) / l.pp) +
                              micro_per_rank * ring_ar * 3 * b * T * 4 / l.pp;
      const double pp_bytes = l.pp > 1 ? micro_per_rank * 2.0 * act * (l.pp > 2 ? 2.0 : 1.0) : 0.0;
      std::printf("%4d %4d %5d | %9.2f %9.2f %9.2f | %9.2f\n", l.tp, l.pp, l.dp, dp_bytes / 1e9, tp_bytes / 1e9,
                  pp_bytes / 1e9, (dp_bytes + tp_bytes + pp_bytes) / 1e9);
    }
    std::puts("\nScaling: dp traffic is fixed per step (∝ P/(tp·pp), not the batch); tp traffic grows with the");
    std::puts("tokens a rank processes (∝ layers/pp · tokens/dp · (tp−1)/tp); pp traffic is two activations");
    std::puts("per micro-batch per boundary, independent of the layer count.");
    return 0;
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "comm_volume: error: %s\n", e.what());
    return 1;
  }
}
