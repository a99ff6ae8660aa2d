// The CUDA training path under a parallel layout computes what one GPU and the
// CPU backend compute, run on the host emulation of CUDA (tests/cuda_emulation):
// kernels on the emulated device's worker thread, the real NCCL communicator
// (comm/nccl_communicator.cu) over the emulated NCCL, every stream-ordering
// mistake reported as a race and every grouping mistake as a deadlock.
//
//   cuda_emulation_equivalence --write-reference FILE --data DIR
//   mpirun -np N cuda_emulation_equivalence --tp T --pp P --cp C --data DIR --reference FILE [--zero 0|1|both]
//   mpirun -np N cuda_emulation_equivalence --tp T --pp P --cp C --data DIR --no-reference
//
// The first form trains the two references in one process and writes their
// curves to FILE: one emulated GPU and the CPU backend, both from the same
// seed and data (CTest runs it once, as the fixture of every layout). The
// second trains the layout on MPI_COMM_WORLD with runtime.device: cuda (bf16
// activations, all-reduced and sent in bf16; fp32 master weights; the
// bucketed gradient reduction overlapped with the backward) and compares;
// prints "N passed, M failed" on rank 0 and exits non-zero on a failure. The
// third only trains the layout: the mutation tests (DIFFTRON_EMU_MUTATION)
// expect it to fail with a race or a deadlock.
//
// The NCCL buffer (DIFFTRON_EMU_NCCL_BUFFER, set by CTest to 4 KiB) is far
// below every k/v block and pipeline message here, so a send that could only
// complete against a receive posted later deadlocks instead of slipping through.
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "core/arena.hpp"
#include "emulated_runtime.hpp"
#include "tests/mpi/mpi_test_util.hpp"

namespace {

using namespace dt;
using namespace dt::mpitest;

// Against one emulated GPU: bf16 activations round differently under a split
// (tp sums partial products rounded to bf16; the reference rounds the whole
// product): per-step losses differ at the 1e-3 relative level and gradient
// norms at 1e-2. A missed reduction (a bucket, a tp sum, a ZeRO shard, a ring
// hop) moves the gradient norm by tens of percent. Losses within 1e-2,
// gradient norms within 5e-2. Against the CPU (fp32 everywhere): the bf16
// noise of the GPU side alone, the same bounds doubled.
constexpr double kLossRel = 1e-2, kNormRel = 5e-2;
constexpr double kCpuLossRel = 2e-2, kCpuNormRel = 1e-1;
constexpr int kSteps = 3;
// Host waits per step after the first (which may grow scratch buffers): one
// for the step's statistics, λ's readback joining it on logging steps.
constexpr uint64_t kMaxWaitsPerStep = 2;

// Head dim 64, the smallest the CUDA attention kernels take: d = 256 / (2·2).
// T = 32 splits into 2·cp chunks of 8 rows for cp 2.
std::string config(const Layout& l, const std::string& device, const std::string& data) {
  char buf[900];
  std::snprintf(buf, sizeof buf,
                "model: {vocab_size: 64, d_model: 256, n_layers: 2, n_heads: 2, n_kv_heads: 2, ffn_hidden: 128}\n"
                "train: {seq_len: 32, global_batch_size: 4, max_steps: %d, lr: 3.0e-3, warmup_steps: 1, grad_clip: 1.0, "
                "log_every: 1, run_dir: /tmp/difftron_mpi_emu_tests}\n"
                "data: {datasets: [{path: %s, weight: 1.0}]}\n"
                "parallel: {tp: %d, pp: %d, cp: %d, zero: %d, micro_batch_size: 1, grad_bucket_mb: 0}\n"
                "runtime: {device: %s, threads: 1}\n",
                kSteps, data.c_str(), l.tp, l.pp, l.cp, l.zero, device.c_str());
  return buf;
}

// FILE: one line per step, "gpu_loss gpu_gnorm cpu_loss cpu_gnorm", full precision.
void write_reference(const std::string& file, const Curve& gpu, const Curve& cpu) {
  FILE* f = std::fopen(file.c_str(), "w");
  if (!f) fail("cannot write ", file);
  for (int i = 0; i < kSteps; ++i)
    std::fprintf(f, "%.17g %.17g %.17g %.17g\n", gpu.loss[i], gpu.gnorm[i], cpu.loss[i], cpu.gnorm[i]);
  std::fclose(f);
}

void read_reference(const std::string& file, Curve& gpu, Curve& cpu) {
  FILE* f = std::fopen(file.c_str(), "r");
  if (!f) fail("cannot read the reference ", file, " (run --write-reference first: CTest's fixture does)");
  gpu.loss.resize(kSteps), gpu.gnorm.resize(kSteps), cpu.loss.resize(kSteps), cpu.gnorm.resize(kSteps);
  for (int i = 0; i < kSteps; ++i)
    if (std::fscanf(f, "%lf %lf %lf %lf", &gpu.loss[i], &gpu.gnorm[i], &cpu.loss[i], &cpu.gnorm[i]) != 4)
      fail(file, ": expected ", kSteps, " lines of four numbers");
  std::fclose(f);
}

// The NCCL communicator's gather (root receives from every other rank in one
// group) over the world: rank r sends {10r, 10r + 1, 10r + 2}; the last rank,
// as root, holds them in rank order. Exact: values are only moved.
bool nccl_gather_matches() {
  const int rank = mpi_world_rank(), size = mpi_world_size(), root = size - 1;
  MPI_Comm group;
  MPI_Comm_dup(MPI_COMM_WORLD, &group);
  const Device gpu = Device::cuda(0);
  auto comm = make_nccl_communicator(group, gpu.index);
  Arena a(gpu);
  a.begin_measure();
  a.alloc_f32({3});
  a.alloc_f32({3 * int64_t(size)});
  a.commit();
  const Tensor in = a.alloc_f32({3}), out = a.alloc_f32({3 * int64_t(size)});
  const std::vector<float> mine = {10.f * rank, 10.f * rank + 1, 10.f * rank + 2};
  device_copy(in.ptr, gpu, mine.data(), Device::cpu(), in.bytes());
  comm->gather(out, in, root);
  std::vector<float> got(size_t(3 * size)), want;
  device_copy(got.data(), Device::cpu(), out.ptr, gpu, out.bytes());
  for (int r = 0; r < size; ++r)
    for (int i = 0; i < 3; ++i) want.push_back(10.f * r + float(i));
  int ok = rank != root || got == want;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  mpi_init_once(&argc, &argv);
  setenv("DIFFTRON_PEAK_TFLOPS", "1", 0);  // no emulated 8192³ GEMM for the MFU line
  int tp = 1, pp = 1, cp = 1;
  std::string data = "/tmp/difftron_emu_parallel_data", zero_arg = "both", reference_file, write_file;
  bool reference = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-reference") {
      reference = false;
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--reference") reference_file = argv[i + 1];
    else if (a == "--write-reference") write_file = argv[i + 1];
    if (a == "--tp") tp = std::atoi(argv[i + 1]);
    else if (a == "--pp") pp = std::atoi(argv[i + 1]);
    else if (a == "--cp") cp = std::atoi(argv[i + 1]);
    else if (a == "--zero") zero_arg = argv[i + 1];
    else if (a == "--data") data = argv[i + 1];
    ++i;
  }
  const int rank = mpi_world_rank(), dp = mpi_world_size() / (tp * pp * cp);
  int passed = 0, failed = 0;
  try {
    Curve gpu_ref, cpu_ref;
    if (rank == 0) write_tiny_data(data);
    if (!write_file.empty()) {
      Trainer gpu(load_config_text(config({}, "cuda", data)), MPI_COMM_SELF);
      gpu_ref = train_steps(gpu, kSteps);
      Trainer cpu(load_config_text(config({}, "cpu", data)), MPI_COMM_SELF);
      cpu_ref = train_steps(cpu, kSteps);
      write_reference(write_file, gpu_ref, cpu_ref);
      return 0;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (reference) read_reference(reference_file, gpu_ref, cpu_ref);
    if (reference) {
      const bool ok = nccl_gather_matches();
      (ok ? passed : failed)++;
      if (rank == 0) std::printf("%s nccl gather on %d ranks: every rank's part on the root, in rank order\n",
                                 ok ? "PASS" : "FAIL", mpi_world_size());
    }
    for (int zero : {0, 1}) {
      if ((zero && dp == 1) || (zero_arg != "both" && std::atoi(zero_arg.c_str()) != zero)) continue;
      Trainer par(load_config_text(config({tp, pp, zero, cp}, "cuda", data)));
      Curve got = train_steps(par, 1);
      const uint64_t waits_before = emu::host_sync_count();
      const Curve rest = train_steps(par, kSteps - 1);
      const double waits = double(emu::host_sync_count() - waits_before) / (kSteps - 1);
      got.loss.insert(got.loss.end(), rest.loss.begin(), rest.loss.end());
      got.gnorm.insert(got.gnorm.end(), rest.gnorm.begin(), rest.gnorm.end());
      if (!reference) continue;
      const double max_waits = par.grid().world().all_reduce_max(waits);
      const double loss_gpu = par.grid().world().all_reduce_max(max_rel(got.loss, gpu_ref.loss));
      const double norm_gpu = par.grid().world().all_reduce_max(max_rel(got.gnorm, gpu_ref.gnorm));
      const double loss_cpu = par.grid().world().all_reduce_max(max_rel(got.loss, cpu_ref.loss));
      const double norm_cpu = par.grid().world().all_reduce_max(max_rel(got.gnorm, cpu_ref.gnorm));
      const bool ok = loss_gpu <= kLossRel && norm_gpu <= kNormRel && loss_cpu <= kCpuLossRel &&
                      norm_cpu <= kCpuNormRel && max_waits <= kMaxWaitsPerStep;
      (ok ? passed : failed)++;
      if (rank == 0)
        std::printf("%s cuda (emulated) tp=%d pp=%d cp=%d dp=%d zero=%d: vs one GPU loss rel %.2e, grad norm rel %.2e; "
                    "vs CPU loss rel %.2e, grad norm rel %.2e; %.1f host waits per step\n",
                    ok ? "PASS" : "FAIL", tp, pp, cp, dp, zero, loss_gpu, norm_gpu, loss_cpu, norm_cpu, max_waits);
    }
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    mpi_abort_job(1);
  }
  if (rank == 0) std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
