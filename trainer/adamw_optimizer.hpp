// AdamW over every parameter of the registry, with moments in arenas laid out
// like the parameters. Weight decay applies where the registry says (matrices).
#pragma once
#include "core/arena.hpp"
#include "model/transformer.hpp"

namespace dt {

class AdamWOptimizer {
 public:
  AdamWOptimizer(Transformer& model, const TrainConfig& t);
  // One update with learning rate lr; gradients are first multiplied by
  // grad_scale (the clipping factor). `step` is 1-based.
  void step(int64_t step, double lr, float grad_scale);
  const std::vector<Tensor>& m() const { return m_; }
  const std::vector<Tensor>& v() const { return v_; }

 private:
  Transformer& model_;
  TrainConfig t_;
  Arena m_arena_, v_arena_;
  std::vector<Tensor> m_, v_;
};

}  // namespace dt
