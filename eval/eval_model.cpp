#include "eval/eval_model.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "model/memory_estimate.hpp"
#include "checkpoint/checkpoint_export.hpp"

namespace dt {

EvalModel load_model_for_eval(const std::string& ckpt, int batch, int seq_len, std::optional<double> rope_theta) {
  CheckpointModel cm = open_checkpoint_model(ckpt);  // also checks the stored tensors against the config
  EvalModel em;
  em.dir = cm.reader.dir();
  em.step = cm.reader.manifest().step;
  em.config = cm.config;
  if (rope_theta) {
    if (!std::isfinite(*rope_theta) || *rope_theta <= 0)
      fail("rope_theta: ", *rope_theta, " is not a RoPE base; expected a number > 0");
    em.config.model.rope_theta = *rope_theta;
  }
  if (batch <= 0) batch = int(em.config.parallel.micro_batch_size);
  if (seq_len <= 0) seq_len = em.config.train.seq_len;
  const TransformerBytes need = transformer_bytes(em.config.model, batch, seq_len);
  require_memory(em.dir + ": its model for " + std::to_string(batch) + " × " + std::to_string(seq_len) + " tokens",
                 need.total(), need.parts(), Device::cpu(), 1, "a smaller --batch or --seq-len");
  em.model = std::make_unique<Transformer>(em.config.model, batch, seq_len);

  // One process holds every parameter whole, in registry order.
  Transformer& m = *em.model;
  for (size_t i = 0; i < m.params().size(); ++i) {
    const ParamSpec& spec = m.registry()[i];
    const std::vector<float> w = cm.reader.assemble(spec, "param");
    DT_CHECK(int64_t(w.size()) == m.params()[i].numel(), spec.name);
    std::memcpy(m.params()[i].f32(), w.data(), w.size() * sizeof(float));
  }
  return em;
}

}  // namespace dt
