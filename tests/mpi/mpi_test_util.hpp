// Shared by the multi-rank test programs: a tiny config, its training data,
// and comparisons of a run's losses and parameters against a reference.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "trainer/trainer.hpp"

namespace dt::mpitest {

struct Layout {
  int tp = 1, pp = 1, zero = 0, cp = 1;
};

struct Shape {
  int seq_len = 32, batch = 8, micro = 2;
};

inline std::string tiny_yaml(const std::string& attention, int kv, const Layout& l, int steps, const std::string& data,
                             const std::string& ckpt_dir = "", const Shape& sh = {}) {
  char buf[1200];
  std::snprintf(buf, sizeof buf,
                "model: {vocab_size: 64, d_model: 32, n_layers: 4, n_heads: 4, n_kv_heads: %d, ffn_hidden: 48, "
                "attention: %s}\n"
                "train: {seq_len: %d, global_batch_size: %d, max_steps: %d, lr: 1.0e-3, warmup_steps: 2, grad_clip: 1.0, "
                "log_every: 1000, run_dir: /tmp/difftron_mpi_tests}\n"
                "data: {datasets: [{path: %s, weight: 1.0}]}\n"
                "parallel: {tp: %d, pp: %d, cp: %d, zero: %d, micro_batch_size: %d, grad_bucket_mb: 0}\n"
                "checkpoint: {dir: '%s', every_steps: 0, keep_last: 5}\n"
                "runtime: {threads: 1}\n",
                kv, attention.c_str(), sh.seq_len, sh.batch, steps, data.c_str(), l.tp, l.pp, l.cp, l.zero, sh.micro,
                ckpt_dir.c_str());
  return buf;
}

// Largest |local gradient slice − reference gradient| relative to the
// reference tensor's largest gradient, over this rank's parameters.
inline double max_grad_rel(Transformer& m, const Transformer& ref, std::string* worst = nullptr) {
  double err = 0;
  for (size_t i = 0; i < m.registry().size(); ++i) {
    const ParamSpec& p = m.registry()[i];
    const TpSlice& sl = m.slices()[i];
    const Tensor g = ref.grad(p.name);
    double scale = 0;
    for (int64_t j = 0; j < g.numel(); ++j) scale = std::max(scale, double(std::abs(g.f32()[j])));
    const float* local = m.grads()[i].f32();
    for (int64_t j = 0; j < sl.numel(); ++j) {
      const double e = std::abs(local[j] - g.f32()[global_index(p, sl, j)]) / std::max(scale, 1e-30);
      if (e > err && worst) *worst = p.name;
      err = std::max(err, e);
    }
  }
  return err;
}

// Structured pseudo-text (a repeating pattern with noise), so training moves the
// loss: one shard and the manifest that makes dir a complete dataset.
inline void write_tiny_data(const std::string& dir) {
  std::filesystem::create_directories(dir);
  ShardWriter w(dir + "/shard_00000.h5", "byte", 64, 63);
  uint64_t x = 12345;
  for (int doc = 0; doc < 400; ++doc) {
    std::vector<int32_t> t;
    for (int i = 0; i < 200; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      t.push_back(int32_t((i % 7) * 5 + (x >> 60)) % 63);
    }
    w.add_document(t);
  }
  w.close();
  write_dataset_manifest(dir);
}

struct Curve {
  std::vector<double> loss, gnorm;
};

inline Curve train_steps(Trainer& t, int n) {
  Curve c;
  for (int i = 0; i < n; ++i) {
    StepStats s = t.train_step(t.steps_done());
    c.loss.push_back(s.loss);
    c.gnorm.push_back(s.grad_norm);
  }
  return c;
}

inline double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) e = std::max(e, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return a.size() == b.size() ? e : 1e30;
}

// Largest |local slice − reference full tensor| over this rank's parameters.
inline double max_param_diff(Transformer& m, const Transformer& ref) {
  double err = 0;
  for (size_t i = 0; i < m.registry().size(); ++i) {
    const ParamSpec& p = m.registry()[i];
    const TpSlice& sl = m.slices()[i];
    const float* full = ref.param(p.name).f32();
    const float* local = m.params()[i].f32();
    for (int64_t j = 0; j < sl.numel(); ++j)
      err = std::max(err, double(std::abs(local[j] - full[global_index(p, sl, j)])));
  }
  return err;
}

// The first `n` ranks of the world as a communicator (MPI_COMM_NULL elsewhere).
inline MPI_Comm first_ranks(int n) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm c;
  MPI_Comm_split(MPI_COMM_WORLD, rank < n ? 0 : MPI_UNDEFINED, rank, &c);
  return c;
}

}  // namespace dt::mpitest
