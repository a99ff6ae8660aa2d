// Runs one optimizer step's 1F1B schedule (trainer/pipeline_schedule.hpp) on
// one pipeline stage: each forward receives its input activation from the
// previous stage and sends its output to the next; each backward receives the
// output gradient from the next stage and sends the input gradient back.
// The first stage embeds tokens, the last computes the loss; a one-stage
// pipeline is plain gradient accumulation over the micro-batches.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "comm/communicator.hpp"
#include "model/transformer.hpp"
#include "trainer/pipeline_schedule.hpp"

namespace dt {

// Tags of the pipeline's point-to-point messages, unique per micro-batch and
// direction, so a receive matches only its own message: micro-batch m's
// activation (stage s → s+1, forward) and its gradient (s+1 → s, backward).
enum class PipeMessage { Activation = 0, Gradient = 1 };
inline int pipe_tag(PipeMessage kind, int micro) { return 2 * micro + int(kind); }
inline int activation_tag(int micro) { return pipe_tag(PipeMessage::Activation, micro); }
inline int gradient_tag(int micro) { return pipe_tag(PipeMessage::Gradient, micro); }

class PipelineExecutor {
 public:
  // Stage `stage` of `stages`, `micro_batches` per optimizer step.
  PipelineExecutor(int stage, int stages, int micro_batches);
  // Activation slots the model needs (Transformer's act_slots).
  int slots() const { return slots_; }
  const std::vector<PipeStep>& schedule() const { return schedule_; }

  // Host arrays of one micro-batch, (B·T) i32 each: the first stage reads
  // tokens, the last targets; they must stay unchanged until the device has
  // run the step (pinned memory: Transformer::forward_stage).
  struct MicroBatch {
    const int32_t* tokens;
    const int32_t* targets;
  };
  struct StepHooks {
    // Micro-batch `micro` of this step (first and last stages only).
    std::function<MicroBatch(int micro)> load;
    // Called before the step's last backward (data parallelism starts
    // overlapping its gradient reduction with that backward).
    std::function<void()> before_last_backward;
  };
  // Every forward and backward of the schedule, accumulating grad_scale ·
  // d(loss sum)/d params into the model's gradients and the loss sum into
  // loss_sum (f64 (1) on the model's device, last stage); returns with every
  // send finished.
  void run_step(Transformer& model, Communicator& pp, float grad_scale, Tensor loss_sum,
                const StepHooks& hooks) const;

 private:
  int stage_, stages_, slots_;
  std::vector<PipeStep> schedule_;
  size_t last_backward_ = 0;  // index into schedule_
};

}  // namespace dt
