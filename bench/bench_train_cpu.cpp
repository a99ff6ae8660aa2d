// Training-step throughput on the CPU backend.
//
//   bench_train_cpu [CONFIG (default configs/bench-cpu.yaml)] [--steps N] [--set k=v ...]
//
// Measures the machine's fp32 peak first (single-thread OpenBLAS SGEMM at
// 2048³ times the threads used), then runs the config's training steps and
// prints tokens/s, achieved model GFLOP/s (6·N_matmul per token plus
// attention; see model/registry.hpp) and MFU against that peak. The first
// step is a warm-up and is not counted.
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <mpi.h>

#include "comm/mpi_communicator.hpp"
#include "core/config_schema.hpp"
#include "core/error.hpp"
#include "kernels/gemm_peak.hpp"
#include "model/registry.hpp"
#include "trainer/trainer.hpp"

int main(int argc, char** argv) {
  std::string path = "configs/bench-cpu.yaml";
  int steps = 6;
  std::vector<std::string> overrides = {"train.log_every=1000000"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help") {
      std::puts("usage: bench_train_cpu [CONFIG] [--steps N] [--set key=value ...]");
      return 0;
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::stoi(argv[++i]);
    } else if (a == "--set" && i + 1 < argc) {
      overrides.push_back(argv[++i]);
    } else {
      path = a;
    }
  }
  try {
    overrides.push_back("train.max_steps=" + std::to_string(steps + 1));
    dt::Config cfg = dt::load_config_file(path, overrides);
    dt::mpi_init_once(&argc, &argv);
    const int rank = dt::mpi_world_rank(), world = dt::mpi_world_size();
    const int threads = dt::default_threads(cfg.runtime.threads);
    // The peak is measured on one core while the other ranks wait, then
    // scaled by every core the run uses (threads × ranks).
    double one = rank == 0 ? dt::measure_sgemm_gflops_one_thread(2048, 3) : 0.0;
    MPI_Bcast(&one, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    const double peak = one * threads * world;
    if (rank == 0)
      std::printf("peak: 1-thread SGEMM 2048^3 = %.1f GFLOP/s x %d threads x %d ranks = %.1f GFLOP/s\n", one, threads,
                  world, peak);

    dt::Trainer trainer(cfg);
    const int64_t tokens_per_step = cfg.train.global_batch_size * cfg.train.seq_len;
    const double flops_per_token = dt::train_flops_per_token(cfg.model, cfg.train.seq_len);
    trainer.train_step(0);  // warm-up: first-touch of arenas and scratch
    double seconds = 0;
    for (int s = 1; s <= steps; ++s) {
      dt::StepStats st = trainer.train_step(s);
      seconds += st.step_s;
      if (rank == 0) std::printf("step %d: %.3f s, loss %.4f\n", s, st.step_s, st.loss);
    }
    const double tok_s = double(tokens_per_step) * steps / seconds;
    const double gflops = tok_s * flops_per_token / 1e9;
    if (rank != 0) return 0;
    std::printf("\n%s: %s attention, %lld matmul params, %.1f MFLOP/token, %lld tokens/step\n", path.c_str(),
                dt::config_schema::choice_name(dt::config_schema::kAttention, cfg.model.attention),
                (long long)dt::matmul_param_count(cfg.model), flops_per_token / 1e6, (long long)tokens_per_step);
    std::printf("tokens/s: %.1f\nachieved: %.1f GFLOP/s\nMFU: %.1f%% of %.1f GFLOP/s\n", tok_s, gflops,
                100.0 * gflops / peak, peak);
    return 0;
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "bench_train_cpu: error: %s\n", e.what());
    return 1;
  }
}
