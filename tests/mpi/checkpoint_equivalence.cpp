// Checkpoints resume exactly and reshard across layouts.
//
//   mpirun -np 8 checkpoint_equivalence --dir DIR
//
// 1. Exact resume: 6 steps straight and 3 steps + save + a new Trainer that
//    resumes + 3 steps give bit-identical losses and parameters, single
//    process and at (tp, pp, dp) = (2, 2, 2).
// 2. Partial loading: a rank reads only the pieces that overlap its slices
//    (a tp slice of a checkpoint saved at tp 2 reads one piece, in and out
//    of the reshard); a damaged piece that only some ranks read makes every
//    rank fail with the same one line naming the file.
// 1c. Hugging Face import: an export of that checkpoint loads at (2,2,2)
//    exactly as in one process.
// 3. Reshard: checkpoints saved at (2,2,2) and at (1,1,2) with ZeRO-1 resume
//    at (1,1,1), (2,1,1) and (1,2,2); the next steps' losses and the final
//    parameters match the run that never changed layout, within the
//    tolerances of tests/mpi/parallel_equivalence.cpp (reordered fp32 sums).
#include <hdf5.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "checkpoint/checkpoint.hpp"
#include "checkpoint/hf_export.hpp"
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

// Overwrites element 0 of /param/<name> in <ck>/<file> with another value:
// damage that HDF5 itself cannot see.
void damage_param(const std::string& ck, const std::string& file, const std::string& name) {
  const std::string path = ck + "/" + file, ds = "/param/" + name;
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, ds.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  std::vector<float> v(size_t(H5Sget_simple_extent_npoints(space)));
  H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  v[0] += 1.0f;
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
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
      b.resume(dir + "/l222/step_00000003");
      const Curve rest = train_steps(b, kSteps - kHalf);
      resumed.loss.insert(resumed.loss.end(), rest.loss.begin(), rest.loss.end());
      resumed_params = max_param_diff(b.model(), ref.model());
    }
    report(MPI_COMM_WORLD, "exact resume at (2,2,2): losses and parameters bit-identical",
           resumed.loss == straight.loss && resumed_params == straight_params);

    // 1c. The same checkpoint exported to Hugging Face format and imported
    // (checkpoint.init_from: hf:DIR) at (2,2,2): each rank's slices equal
    // the single-process import's, bit for bit (the import only moves values).
    {
      const std::string hf = dir + "/hf222";
      if (rank == 0) export_hf(dir + "/l222/step_00000003", hf, {});
      MPI_Barrier(MPI_COMM_WORLD);
      Config c1 = cfg({}, ""), c8 = cfg(l222, "");
      c1.checkpoint.init_from = c8.checkpoint.init_from = "hf:" + hf;
      Trainer single(c1, MPI_COMM_SELF);
      Trainer sharded(c8);
      // The import really loaded the checkpoint: every tensor but o_proj
      // (g_sub folded in) and g_sub (1) as the checkpoint stores it.
      bool loaded = true;
      const CheckpointReader ck(dir + "/l222/step_00000003");
      for (size_t i = 0; i < single.model().registry().size(); ++i) {
        const ParamSpec& spec = single.model().registry()[i];
        if (spec.name.find("out_proj") != std::string::npos || spec.name.find("subln") != std::string::npos) continue;
        const std::vector<float> want = ck.assemble(spec, "param");
        loaded = loaded && std::equal(want.begin(), want.end(), single.model().params()[i].f32());
      }
      report(MPI_COMM_WORLD, "hf import at (2,2,2): every slice equals the single-process import of the checkpoint",
             loaded && max_param_diff(sharded.model(), single.model()) == 0.0);
    }

    // 2a. The tp-1 slice of a column-split weight, at tp 2 and (resharding) tp 4:
    // only the one piece holding it is read, and it equals that part of the
    // whole tensor.
    const std::string ck222 = dir + "/l222/step_00000003";
    if (rank == 0) {
      const CheckpointReader ck(ck222, Verify::what_is_read);
      const std::vector<ParamSpec> reg = param_registry(cfg(l222, "").model);
      const ParamSpec& w2 = *std::find_if(reg.begin(), reg.end(), [](const ParamSpec& p) {
        return p.name == "layers.2.mlp.w2.weight";  // [32, 48], split by columns
      });
      const std::vector<float> whole = CheckpointReader(ck222).assemble(w2, "param");
      bool ok = true;
      int64_t expect_read = 0;
      for (const int tp : {2, 4}) {
        const TpSlice sl = tp_slice(w2, 1, tp);
        std::vector<float> part(size_t(sl.numel()));
        ck.read(w2, "param", sl, 0, sl.numel(), part.data());
        expect_read += tp_slice(w2, 1, 2).numel() * int64_t(sizeof(float));
        for (int64_t j = 0; j < sl.numel(); ++j) ok = ok && part[size_t(j)] == whole[size_t(global_index(w2, sl, j))];
        ok = ok && ck.bytes_read() == expect_read;
      }
      std::printf("%s partial read: a tp slice reads only its piece (%lld bytes) and matches the whole tensor\n",
                  ok ? "PASS" : "FAIL", static_cast<long long>(ck.bytes_read()));
      (ok ? g_passed : g_failed)++;
    }

    // 2b. shard_5.h5 (tp 1, pp 1, dp 0) damaged: only ranks 5 and 7 read it.
    const std::string damaged = dir + "/damaged/step_00000003";
    if (rank == 0) {
      std::filesystem::create_directories(damaged);
      std::filesystem::copy(ck222, damaged, std::filesystem::copy_options::recursive);
      const CheckpointManifest m = read_manifest(damaged);
      const auto p = std::find_if(m.pieces.begin(), m.pieces.end(), [](const CheckpointPiece& q) {
        return q.file == "shard_5.h5" && q.kind == "param";
      });
      damage_param(damaged, p->file, p->name);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    {
      Trainer d(cfg(l222, dir + "/damaged"));
      std::string msg;
      try {
        d.resume(damaged);
      } catch (const Error& e) {
        msg = e.what();
      }
      const bool ok = msg.find(damaged + "/shard_5.h5") != std::string::npos &&
                      msg.find("checksum") != std::string::npos && msg.find('\n') == std::string::npos &&
                      d.steps_done() == 0;
      if (!ok) std::fprintf(stderr, "rank %d: damaged resume: '%s'\n", rank, msg.c_str());
      report(MPI_COMM_WORLD, "a piece damaged on one tp/pp slice: every rank fails naming shard_5.h5", ok);
    }

    // A ZeRO-1 checkpoint at (1,1,2), on ranks 0-1.
    if (MPI_Comm c2 = first_ranks(2); c2 != MPI_COMM_NULL) {
      Trainer z(cfg({1, 1, 1}, dir + "/l112z"), c2);
      train_steps(z, kHalf);
      z.save_checkpoint();
      MPI_Comm_free(&c2);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    // 3. Reshard both checkpoints onto three other layouts.
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
          r.resume(dir + "/" + src + "/step_00000003");
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
