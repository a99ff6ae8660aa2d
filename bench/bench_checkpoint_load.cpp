// Checkpoint load cost per rank: wall time, CPU time (user + system: on a
// shared machine the wall time mostly measures the other processes) and bytes
// read (the kernel's rchar for this process, /proc/self/io: every read(2),
// HDF5 metadata and checksum passes included) of Trainer::resume on a
// checkpoint saved by the same layout.
//
//   mpirun --oversubscribe -np 4 bench_checkpoint_load [--tp 2] [--zero 0|1] [--dir DIR] [--d-model 256]
//
// The model (d_model 256, 4 layers, ffn 1024, vocab 512: about 4.3 M
// parameters) makes a checkpoint of about 52 MB (weights and both Adam
// moments in fp32), so the bytes read are the checkpoint's, not its metadata.
#include <mpi.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "comm/mpi_communicator.hpp"
#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "trainer/trainer.hpp"

namespace {

// Bytes this process has read through read(2) and friends so far.
long long rchar() {
  std::ifstream io("/proc/self/io");
  std::string key;
  long long v = 0;
  while (io >> key >> v)
    if (key == "rchar:") return v;
  return -1;
}

// User + system CPU seconds of this process so far.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

void write_data(const std::string& dir) {
  std::filesystem::create_directories(dir);
  dt::ShardWriter w(dir + "/shard_00000.h5", "byte", 512, 511);
  uint64_t x = 1;
  for (int doc = 0; doc < 64; ++doc) {
    std::vector<int32_t> t;
    for (int i = 0; i < 300; ++i) t.push_back(int32_t((x = x * 6364136223846793005ull + 1) >> 55));
    w.add_document(t);
  }
  w.close();
  dt::write_dataset_manifest(dir);
}

}  // namespace

int main(int argc, char** argv) {
  dt::mpi_init_once(&argc, &argv);
  int tp = 2, zero = 0, d_model = 256;
  std::string dir = "/tmp/difftron_bench_checkpoint_load";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tp") tp = std::stoi(argv[i + 1]);
    else if (a == "--zero") zero = std::stoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--d-model") d_model = std::stoi(argv[i + 1]);
  }
  const int rank = dt::mpi_world_rank(), size = dt::mpi_world_size();
  try {
    if (rank == 0) {
      std::filesystem::remove_all(dir);
      write_data(dir + "/data");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const std::string yaml =
        "model: {vocab_size: 512, d_model: " + std::to_string(d_model) +
        ", n_layers: 4, n_heads: 4, n_kv_heads: 4, ffn_hidden: " + std::to_string(4 * d_model) +
        "}\n"
        "train: {seq_len: 32, global_batch_size: 8, max_steps: 10, lr: 1.0e-3, warmup_steps: 1, log_every: 1000, "
        "run_dir: " + dir + "/run}\n"
        "data: {datasets: [{path: " + dir + "/data, weight: 1.0}]}\n"
        "parallel: {tp: " + std::to_string(tp) + ", zero: " + std::to_string(zero) + ", micro_batch_size: 2}\n"
        "checkpoint: {dir: " + dir + "/ck, every_steps: 0, keep_last: 2}\n"
        "runtime: {threads: 1}\n";
    const dt::Config cfg = dt::load_config_text(yaml);
    {
      dt::Trainer t(cfg);
      t.train_step(0);
      t.save_checkpoint();
    }
    std::error_code ec;
    long long ck_bytes = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/ck", ec))
      if (e.is_regular_file()) ck_bytes += (long long)e.file_size();
    dt::Trainer t(cfg);
    MPI_Barrier(MPI_COMM_WORLD);
    const long long r0 = rchar();
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    t.resume("auto");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - c0;
    const long long read = rchar() - r0;
    std::vector<double> times(static_cast<size_t>(size)), cpus(static_cast<size_t>(size));
    MPI_Gather(&cpu, 1, MPI_DOUBLE, cpus.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    std::vector<long long> reads(static_cast<size_t>(size));
    MPI_Gather(&s, 1, MPI_DOUBLE, times.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Gather(&read, 1, MPI_LONG_LONG, reads.data(), 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::printf("checkpoint: %.1f MB on disk (tp %d, dp %d, zero %d; %d ranks)\n", ck_bytes / 1e6, tp, size / tp,
                  zero, size);
      for (int r = 0; r < size; ++r)
        std::printf("rank %d: resume %.3f s wall, %.3f s cpu, read %.1f MB (%.2f x the checkpoint)\n", r,
                    times[size_t(r)], cpus[size_t(r)], reads[size_t(r)] / 1e6,
                    double(reads[size_t(r)]) / double(ck_bytes));
    }
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    dt::mpi_abort_job(1);
  }
  return 0;
}
