// The 1F1B pipeline schedule as a list of steps, printable and testable on its
// own. Stage s of P runs min(P−s−1, M) warm-up forwards, then alternates one
// forward and one backward, then drains the remaining backwards. Receives and
// sends are implied: a forward on a stage > 0 first receives its input
// activation; a forward on a stage < P−1 sends its output; a backward on a
// stage < P−1 first receives the output gradient; a backward on a stage > 0
// sends its input gradient.
#pragma once
#include <string>
#include <vector>

namespace dt {

struct PipeStep {
  enum Kind { Forward, Backward } kind;
  int micro;  // micro-batch index
  int slot;   // activation slot: micro % slots
};

// Activation slots a stage needs: micro-batches in flight at once.
int pipeline_slots(int stage, int stages, int micro_batches);
std::vector<PipeStep> one_f_one_b(int stage, int stages, int micro_batches);
std::string to_string(const std::vector<PipeStep>& steps);

}  // namespace dt
