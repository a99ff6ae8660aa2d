#include "trainer/pipeline_schedule.hpp"

#include <algorithm>

namespace dt {

int pipeline_slots(int stage, int stages, int micro_batches) {
  return std::max(1, std::min(stages - stage, micro_batches));
}

std::vector<PipeStep> one_f_one_b(int stage, int stages, int micro_batches) {
  const int warmup = std::min(stages - stage - 1, micro_batches);
  const int slots = pipeline_slots(stage, stages, micro_batches);
  std::vector<PipeStep> steps;
  int next_f = 0, next_b = 0;
  auto forward = [&] { steps.push_back({PipeStep::Forward, next_f, next_f % slots}), ++next_f; };
  auto backward = [&] { steps.push_back({PipeStep::Backward, next_b, next_b % slots}), ++next_b; };
  for (int i = 0; i < warmup; ++i) forward();
  while (next_f < micro_batches) {
    forward();
    backward();
  }
  while (next_b < micro_batches) backward();
  return steps;
}

std::string to_string(const std::vector<PipeStep>& steps) {
  std::string s;
  for (const PipeStep& p : steps) {
    if (!s.empty()) s += ' ';
    s += (p.kind == PipeStep::Forward ? "F" : "B") + std::to_string(p.micro);
  }
  return s;
}

}  // namespace dt
