// Checkpoints resume exactly and reshard across layouts.
//
//   mpirun -np 8 checkpoint_equivalence --dir DIR
//
// 1. Exact resume: 6 steps straight and 3 steps + save + a new Trainer that
//    resumes + 3 steps give bit-identical losses and parameters, single
//    process and at (tp, pp, dp) = (2, 2, 2).
// 2. Reshard: checkpoints saved at (2,2,2) and at (1,1,2) with ZeRO-1 resume
//    at (1,1,1), (2,1,1) and (1,2,2); the next steps' losses and the final
//    parameters match the run that never changed layout, within the
//    tolerances of tests/mpi/parallel_equivalence.cpp (reordered fp32 sums).
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "tests/mpi/mpi_test_util.hpp"

using namespace dt;
using namespace dt::mpitest;

namespace {

constexpr int kSteps = 6, kHalf = 3;
constexpr double kLossRel = 1e-6, kParamAbs = 5e-5;  // as in parallel_equivalence.cpp
int g_passed = 0, g_failed = 0;

void report(MPI_Comm comm, const std::string& what, bool ok) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int all_ok = ok;
  MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, comm);
  if (rank == 0) std::printf("%s %s\n", all_ok ? "PASS" : "FAIL", what.c_str());
  if (mpi_world_rank() == 0) (all_ok ? g_passed : g_failed)++;
}

}  // namespace

int main(int argc, char** argv) {
  mpi_init_once(&argc, &argv);
  std::string dir = "/tmp/difftron_ckpt_equivalence";
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--dir") dir = argv[i + 1];
  const int rank = mpi_world_rank();
  try {
    const std::string data = dir + "/data";
    if (rank == 0) {
      std::filesystem::remove_all(dir);
      write_tiny_data(data);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    auto cfg = [&](Layout l, const std::string& ck) {
      return load_config_text(tiny_yaml("diff", 2, l, kSteps, data, ck));
    };
    // The uninterrupted single-process run, on every rank.
    Trainer ref(cfg({}, ""), MPI_COMM_SELF);
    const Curve want = train_steps(ref, kSteps);

    // 1a. Exact resume, single process (rank 0 only; its own directory).
    if (rank == 0) {
      const std::string ck = dir + "/single";
      Curve got;
      {
        Trainer a(cfg({}, ck), MPI_COMM_SELF);
        got = train_steps(a, kHalf);
        a.save_checkpoint();
      }
      Trainer b(cfg({}, ck), MPI_COMM_SELF);
      b.resume("auto");
      const Curve rest = train_steps(b, kSteps - kHalf);
      got.loss.insert(got.loss.end(), rest.loss.begin(), rest.loss.end());
      const bool ok = got.loss == want.loss && max_param_diff(b.model(), ref.model()) == 0.0;
      std::printf("%s exact resume, single process: losses and parameters bit-identical\n", ok ? "PASS" : "FAIL");
      (ok ? g_passed : g_failed)++;
    }

    // 1b. Exact resume at (2,2,2), and the checkpoint used for resharding below.
    const Layout l222{2, 2, 0};
    Curve straight, resumed;
    double straight_params = 0, resumed_params = 0;
    {
      Trainer s(cfg(l222, ""));
      straight = train_steps(s, kSteps);
      straight_params = max_param_diff(s.model(), ref.model());
    }
    {
      Trainer a(cfg(l222, dir + "/l222"));
      resumed = train_steps(a, kHalf);
      a.save_checkpoint();
    }
    {
      Trainer b(cfg(l222, dir + "/l222"));
      b.resume(dir + "/l222/step_3");
      const Curve rest = train_steps(b, kSteps - kHalf);
      resumed.loss.insert(resumed.loss.end(), rest.loss.begin(), rest.loss.end());
      resumed_params = max_param_diff(b.model(), ref.model());
    }
    report(MPI_COMM_WORLD, "exact resume at (2,2,2): losses and parameters bit-identical",
           resumed.loss == straight.loss && resumed_params == straight_params);

    // A ZeRO-1 checkpoint at (1,1,2), on ranks 0-1.
    if (MPI_Comm c2 = first_ranks(2); c2 != MPI_COMM_NULL) {
      Trainer z(cfg({1, 1, 1}, dir + "/l112z"), c2);
      train_steps(z, kHalf);
      z.save_checkpoint();
      MPI_Comm_free(&c2);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    // 2. Reshard both checkpoints onto three other layouts.
    struct Target {
      Layout l;
      int ranks;
      const char* name;
    };
    for (const char* src : {"l222", "l112z"})
      for (const Target& t : {Target{{1, 1, 0}, 1, "(1,1,1)"}, Target{{2, 1, 0}, 2, "(2,1,1)"},
                              Target{{1, 2, 0}, 4, "(1,2,2)"}}) {
        MPI_Comm c = first_ranks(t.ranks);
        if (c != MPI_COMM_NULL) {
          Trainer r(cfg(t.l, dir + "/" + src), c);
          r.resume(dir + "/" + src + "/step_3");
          const Curve rest = train_steps(r, kSteps - kHalf);
          const std::vector<double> tail(want.loss.begin() + kHalf, want.loss.end());
          const bool ok = max_rel(rest.loss, tail) <= kLossRel && max_param_diff(r.model(), ref.model()) <= kParamAbs;
          report(c, std::string("reshard ") + (src[1] == '2' ? "(2,2,2)" : "(1,1,2)+ZeRO-1") + " -> " + t.name +
                        ": next losses and parameters match",
                 ok);
          MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
      }
  } catch (const dt::Error& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    mpi_abort_job(1);
  }
  if (rank == 0) std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
