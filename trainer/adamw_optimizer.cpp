#include "trainer/adamw_optimizer.hpp"

#include "kernels/ops.hpp"

namespace dt {

AdamWOptimizer::AdamWOptimizer(Transformer& model, const TrainConfig& t)
    : model_(model), t_(t), m_arena_(model.param_arena().device()), v_arena_(model.param_arena().device()) {
  for (auto* pair : {&m_, &v_}) {
    Arena& a = (pair == &m_) ? m_arena_ : v_arena_;
    a.begin_measure();
    for (const Tensor& p : model.params()) a.alloc_f32({p.numel()});
    a.commit();
    for (const Tensor& p : model.params()) pair->push_back(a.alloc_f32({p.numel()}));
  }
}

void AdamWOptimizer::step(int64_t step, double lr, float grad_scale) {
  const auto& reg = model_.registry();
  for (size_t i = 0; i < reg.size(); ++i) {
    ops::AdamWParams p{float(lr), float(t_.beta1), float(t_.beta2), float(t_.adam_eps),
                       reg[i].decay ? float(t_.weight_decay) : 0.f, step, grad_scale};
    ops::adamw(model_.params()[i], model_.grads()[i], m_[i], v_[i], p);
  }
}

}  // namespace dt
