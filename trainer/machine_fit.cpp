#include "trainer/machine_fit.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "comm/node_ranks.hpp"
#include "core/error.hpp"
#include "data/data_loader.hpp"
#include "trainer/pipeline_schedule.hpp"

namespace dt {

RankBytes estimate_rank_bytes(const Config& c, const GridShape& shape, const GridCoord& at, Device dev) {
  const int64_t B = c.parallel.micro_batch_size, T = c.train.seq_len, accum = c.grad_accum_steps(shape.dp);
  ModelParallel par;  // as the Trainer builds it
  par.place = {at.tp, shape.tp, at.pp, shape.pp};
  par.cp_rank = at.cp;
  par.cp = shape.cp;
  par.pad_multiple = shape.dp * shape.cp;
  const int slots = pipeline_slots(at.pp, shape.pp, int(std::min<int64_t>(accum, INT32_MAX)));
  RankBytes r;
  r.model = transformer_bytes(c.model, B, T / shape.cp, par, slots, dev);
  // AdamWOptimizer's m and v (and DataParallelGrads' reduced gradient shard under ZeRO-1), each
  // over 1/shards of the parameters.
  const bool zero1 = c.parallel.zero == 1 && shape.dp * shape.cp > 1;
  const int64_t shards = zero1 ? int64_t(shape.dp) * shape.cp : 1;
  r.optimizer = r.model.params / shards * (zero1 ? 3 : 2);
  // Windows of T+1 tokens: the loader's queue and the one being read, the Trainer's
  // window, and each micro-batch's pinned inputs and targets.
  const bool loads = at.pp == 0 || at.pp == shape.pp - 1;
  const CheckedSize window = CheckedSize(B) * (T + 1) * int64_t(sizeof(int32_t));
  r.token_buffers = CheckedSize(B) * T / shape.cp * 2 * int64_t(sizeof(int32_t)) * accum;
  if (loads) r.token_buffers += window * (LoaderOptions().prefetch + 2);
  return r;
}

void check_run_fits_machine(const Config& c, const ProcessGrid& grid, Device dev) {
  const int cores = omp_get_num_procs();
  if (c.runtime.threads > cores)
    fail(c.source, ": runtime.threads: ", c.runtime.threads, " threads, but this process may use ", cores,
         " cores; expected at most ", cores, " (0: every core, split between the ranks on a node)");

  const RankBytes r = estimate_rank_bytes(c, grid.shape(), grid.coord(), dev);
  const ModelConfig& m = c.model;
  const std::string what = c.source + ": this run (model.n_layers " + std::to_string(m.n_layers) +
                           ", model.d_model " + std::to_string(m.d_model) + ", model.ffn_hidden " +
                           std::to_string(m.ffn_hidden) + ", model.vocab_size " + std::to_string(m.vocab_size) +
                           ", train.seq_len " + std::to_string(c.train.seq_len) + ", parallel.micro_batch_size " +
                           std::to_string(c.parallel.micro_batch_size) + ")";
  const std::string remedy = "a smaller model, micro-batch or seq_len, or more ranks to share it (parallel.tp, "
                             "parallel.pp, parallel.zero: 1 with data parallelism)";
  const std::string parts = r.model.parts() + ", optimizer state " + format_bytes(r.optimizer);
  const int ranks_here = node_local_size();
  if (dev.is_cpu()) {
    require_memory(what, r.device_total() + r.token_buffers,
                   parts + ", token buffers " + format_bytes(r.token_buffers), dev, ranks_here, remedy);
  } else {
    require_memory(what, r.device_total(), parts, dev, 1, remedy);
    require_memory(what, r.token_buffers, "token buffers in host memory", Device::cpu(), ranks_here,
                   "a smaller train.global_batch_size or seq_len");
  }
}

}  // namespace dt
