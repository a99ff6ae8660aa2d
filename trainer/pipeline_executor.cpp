#include "trainer/pipeline_executor.hpp"

#include "core/watchdog.hpp"

namespace dt {

PipelineExecutor::PipelineExecutor(int stage, int stages, int micro_batches)
    : stage_(stage), stages_(stages), slots_(pipeline_slots(stage, stages, micro_batches)),
      schedule_(one_f_one_b(stage, stages, micro_batches)) {
  for (size_t i = 0; i < schedule_.size(); ++i)
    if (schedule_[i].kind == PipeStep::Backward) last_backward_ = i;
}

void PipelineExecutor::run_step(Transformer& model, Communicator& pp, float grad_scale, Tensor loss_sum,
                                const StepHooks& hooks) const {
  const bool first = stage_ == 0, last = stage_ == stages_ - 1;
  for (size_t i = 0; i < schedule_.size(); ++i) {
    const PipeStep& st = schedule_[i];
    if (st.kind == PipeStep::Forward) {
      watch_phase("forward of micro-batch", st.micro);
      if (!first) pp.recv(model.input_act(st.slot), stage_ - 1, activation_tag(st.micro));
      pp.wait_sends();
      MicroBatch mb{nullptr, nullptr};
      if (first || last) mb = hooks.load(st.micro);
      model.forward_stage(st.slot, first ? mb.tokens : nullptr, last ? mb.targets : nullptr, grad_scale, loss_sum);
      if (!last) pp.send(model.output_act(st.slot), stage_ + 1, activation_tag(st.micro));
    } else {
      watch_phase("backward of micro-batch", st.micro);
      if (!last) pp.recv(model.grad_in(), stage_ + 1, gradient_tag(st.micro));
      pp.wait_sends();
      if (i == last_backward_ && hooks.before_last_backward) hooks.before_last_backward();
      model.backward_stage(st.slot);
      if (!first) pp.send(model.grad_out(), stage_ - 1, gradient_tag(st.micro));
    }
  }
  pp.wait_sends();
}

}  // namespace dt
