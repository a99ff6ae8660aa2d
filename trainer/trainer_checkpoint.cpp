// Saving and loading the Trainer's state: weights (fp32 masters, λ and g_sub
// included), Adam moments, step, data position and the config (DESIGN §6).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "comm/mpi_communicator.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/watchdog.hpp"
#include "trainer/checkpoint.hpp"
#include "trainer/run_guard.hpp"
#include "trainer/trainer.hpp"

namespace dt {

namespace fs = std::filesystem;

namespace {

// One line per piece for gathering to rank 0.
std::string encode(const CheckpointPiece& p) {
  std::ostringstream os;
  os << p.name << ' ' << p.kind << ' ' << p.shape.size();
  for (int64_t d : p.shape) os << ' ' << d;
  os << ' ' << p.slice.row0 << ' ' << p.slice.rows << ' ' << p.slice.col0 << ' ' << p.slice.cols << ' ' << p.f0 << ' '
     << p.f1 << ' ' << p.file << '\n';
  return os.str();
}

CheckpointPiece decode(const std::string& line) {
  std::istringstream is(line);
  CheckpointPiece p;
  size_t nd = 0;
  is >> p.name >> p.kind >> nd;
  p.shape.resize(nd);
  for (auto& d : p.shape) is >> d;
  is >> p.slice.row0 >> p.slice.rows >> p.slice.col0 >> p.slice.cols >> p.f0 >> p.f1 >> p.file;
  return p;
}

// Concatenates every rank's text on rank 0.
std::string gather_text(MPI_Comm comm, const std::string& mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int len = int(mine.size());
  std::vector<int> lens(size), offs(size);
  MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm));
  int total = 0;
  for (int r = 0; r < size; ++r) offs[r] = total, total += lens[r];
  std::string all(rank == 0 ? size_t(total) : 0, '\0');
  MPI_CHECK(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, 0, comm));
  return all;
}

// The first model setting that differs, as "model.key: A in the checkpoint, B in the config".
std::string model_difference(const ModelConfig& ck, const ModelConfig& now) {
  std::ostringstream os;
#define DT_DIFF(field)                                                                                          \
  if (ck.field != now.field) {                                                                                 \
    os << "model." #field ": " << ck.field << " in the checkpoint, " << now.field << " in the config";          \
    return os.str();                                                                                           \
  }
  DT_DIFF(vocab_size) DT_DIFF(d_model) DT_DIFF(n_layers) DT_DIFF(n_heads) DT_DIFF(n_kv_heads) DT_DIFF(ffn_hidden)
  DT_DIFF(tie_embeddings) DT_DIFF(norm_eps)
#undef DT_DIFF
  if (ck.attention != now.attention) return "model.attention differs between the checkpoint and the config";
  return "";
}

// Fault injection for testing crash safety: DIFFTRON_KILL_DURING_SAVE=RANK:STEP
// makes that world rank die by SIGKILL (no cleanup, as a node failure would)
// while saving the checkpoint of that step: after its HDF5 file is in
// step_<N>.tmp/, before the manifest is written.
void maybe_kill_during_save(int rank, int64_t step) {
  const char* spec = std::getenv("DIFFTRON_KILL_DURING_SAVE");
  int r = -1;
  long long s = -1;
  if (spec && std::sscanf(spec, "%d:%lld", &r, &s) == 2 && r == rank && s == step) {
    log_info("killing rank ", rank, " during the save of step ", step, " (DIFFTRON_KILL_DURING_SAVE=", spec, ")");
    std::raise(SIGKILL);
  }
}

// The checkpoint reads and writes host memory; on a GPU it works on host
// copies of the flat arenas (`stage`), taken before a save and copied back
// after a load.
float* host_copy(Tensor t, std::vector<float>& stage) {
  if (t.device.is_cpu()) return t.f32();
  stage.resize(size_t(t.numel()));
  device_copy(stage.data(), Device::cpu(), t.ptr, t.device, t.bytes());
  return stage.data();
}

void copy_back(Tensor t, const std::vector<float>& stage) {
  if (!t.device.is_cpu()) device_copy(t.ptr, t.device, stage.data(), Device::cpu(), t.bytes());
}

}  // namespace

namespace {

// Free bytes on the file system holding path, for a failed save's message.
std::string free_space(const std::string& path) {
  std::error_code ec;
  const fs::space_info si = fs::space(path, ec);
  if (ec) return "";
  return ", " + std::to_string(si.available) + " bytes free there";
}

// The name for a directory moved out of a new checkpoint's way: never deleted
// automatically, never counted as a checkpoint (finished_step is -1 for it).
fs::path aside_name(const fs::path& dir) {
  fs::path p = dir.string() + ".superseded";
  for (int k = 1; fs::exists(p); ++k) p = dir.string() + ".superseded." + std::to_string(k);
  return p;
}

}  // namespace

bool Trainer::save_checkpoint() {
  const std::string root = cfg_.checkpoint.dir;
  if (root.empty()) fail(cfg_.source, ": checkpoint.dir: empty; expected a directory to save checkpoints in");
  const std::string name = "step_" + std::to_string(steps_done_);
  const std::string tmp = root + "/" + name + ".tmp", final_dir = root + "/" + name;
  Communicator& world = grid_->world();
  const MPI_Comm comm = MPI_Comm(static_cast<MpiCommunicator&>(world).handle());
  const auto t0 = std::chrono::steady_clock::now();
  watch_phase("checkpoint save");
  // Every phase of the save may fail on some rank (disk full, I/O error); the
  // ranks agree after each one, so all of them take the same path.
  std::string error;
  const auto attempt = [&](const auto& work) {
    if (!error.empty()) return;
    try {
      work();
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  const auto failed_somewhere = [&] { return world.all_reduce_max(error.empty() ? 0.0 : 1.0) > 0; };

  if (world.rank() == 0)
    attempt([&] {
      fs::create_directories(root);
      fs::remove_all(tmp);
      fs::create_directories(tmp);
    });
  bool failed = failed_somewhere();

  // Without ZeRO-1 the dp-rank-0 replica writes whole slices; with it, every
  // rank writes the parameter and moment ranges of its own shard.
  const bool zero = cfg_.parallel.zero == 1 && grid_->dp_cp().size() > 1;
  std::vector<CheckpointPiece> pieces;
  std::string files_text;
  if (!failed && (zero || grid_->coord().dp == 0)) {
    const std::string file = "shard_" + std::to_string(grid_->rank()) + ".h5";
    std::vector<const float*> data;
    std::vector<float> stage_p, stage_m, stage_v;
    const float* dev_base = model_->flat_params().f32();
    const float* base = host_copy(model_->flat_params(), stage_p);
    const float* m_host = host_copy(opt_->m(), stage_m);
    const float* v_host = host_copy(opt_->v(), stage_v);
    const int64_t s0 = opt_->shard_begin(), s1 = opt_->shard_end();
    for (size_t i = 0; i < model_->params().size(); ++i) {
      const int64_t off = model_->params()[i].f32() - dev_base, n = model_->params()[i].numel();
      const int64_t b = std::max(off, s0), e = std::min(off + n, s1);
      if (b >= e) continue;
      const ParamSpec& spec = model_->registry()[i];
      const struct {
        const char* kind;
        const float* src;
      } kinds[] = {{"param", base + b}, {"exp_avg", m_host + (b - s0)}, {"exp_avg_sq", v_host + (b - s0)}};
      for (const auto& k : kinds) {
        pieces.push_back({spec.name, k.kind, spec.shape, model_->slices()[i], b - off, e - off, file});
        data.push_back(k.src);
      }
    }
    attempt([&] {
      try {
        const CheckpointFile cf = write_checkpoint_file(tmp, file, pieces, data);
        files_text = cf.name + " " + std::to_string(cf.crc32) + " " + std::to_string(cf.bytes) + "\n";
      } catch (const Error&) {
        fail("writing ", file, " failed (disk full or I/O error", free_space(root), ")");
      }
    });
  }
  maybe_kill_during_save(mpi_world_rank(), steps_done_);
  failed = failed_somewhere();
  std::string piece_text;
  for (const CheckpointPiece& p : pieces) piece_text += encode(p);
  const std::string all_pieces = failed ? "" : gather_text(comm, piece_text);
  const std::string all_files = failed ? "" : gather_text(comm, files_text);

  // Rank 0 publishes: the manifest, then the final name by rename.
  if (!failed && world.rank() == 0)
    attempt([&] {
      CheckpointManifest m;
      m.step = steps_done_;
      m.tokens_seen = steps_done_ * cfg_.train.batch_size * cfg_.train.seq_len;
      m.data_state = steps_done_ * cfg_.train.batch_size;
      m.total_steps = cfg_.total_steps();
      m.seed = cfg_.train.seed;
      m.tp = grid_->shape().tp, m.pp = grid_->shape().pp, m.dp = grid_->shape().dp, m.zero = cfg_.parallel.zero;
      m.config_yaml = config_to_yaml(cfg_);
      std::istringstream ps(all_pieces), fsx(all_files);
      for (std::string line; std::getline(ps, line);) m.pieces.push_back(decode(line));
      for (std::string line; std::getline(fsx, line);) {
        std::istringstream ls(line);
        CheckpointFile f;
        ls >> f.name >> f.crc32 >> f.bytes;
        m.files.push_back(f);
      }
      // Complete on disk before it gets its final name.
      write_file_atomically(tmp + "/manifest.yaml", manifest_to_yaml(m));
      // A directory of the same step (a run resumed from an older checkpoint,
      // or a damaged one) is moved aside, never deleted.
      if (fs::exists(final_dir)) {
        const fs::path aside = aside_name(final_dir);
        fs::rename(final_dir, aside);
        log_info("checkpoint: moved the existing ", final_dir, " aside to ", aside.string());
      }
      fs::rename(tmp, final_dir);
      fsync_dir(root);
    });
  failed = failed_somewhere();

  if (failed) {
    const std::string errors = gather_text(comm, error.empty() ? "" : "rank " + std::to_string(world.rank()) +
                                                                          ": " + error + "\n");
    if (world.rank() == 0) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      const std::string first = errors.substr(0, errors.find('\n'));
      const std::string kept = saved_step_ >= 0 ? "step_" + std::to_string(saved_step_) + " is kept"
                                                : "no earlier checkpoint of this run";
      const std::string msg = "checkpoint: cannot save step " + std::to_string(steps_done_) + " in " + root + ": " +
                              (world.size() > 1 ? first : first.substr(first.find(": ") + 2)) + "; removed " +
                              name + ".tmp, " + kept;
      if (!cfg_.checkpoint.retry_failed_save)
        fail(msg, " (checkpoint.retry_failed_save: true would keep training and try again at the next save)");
      log_warn(msg, "; training continues and tries again at the next save (checkpoint.retry_failed_save)");
    }
    // Rank 0 ends the job on a fatal failure; the others wait here for it.
    world.barrier();
    return false;
  }

  saved_step_ = steps_done_;
  if (world.rank() == 0) {
    // The checkpoint is complete and findable without `latest` (resume scans
    // step_<N>), so a failure from here on is a warning, not a lost save.
    try {
      write_file_atomically(root + "/latest", name + "\n");
    } catch (const std::exception& e) {
      log_warn("checkpoint: warning: could not update ", root, "/latest (", e.what(), ")");
    }
    // Complete checkpoints beyond keep_last go now that the new one is
    // complete; a damaged one (no manifest) is never deleted automatically.
    std::vector<std::pair<int64_t, fs::path>> done;
    for (const auto& e : fs::directory_iterator(root)) {
      const int64_t step = finished_step(e.path().filename().string());
      if (step >= 0 && fs::exists(e.path() / "manifest.yaml")) done.emplace_back(step, e.path());
    }
    std::sort(done.begin(), done.end());
    std::error_code ec;
    for (size_t i = 0; i + size_t(cfg_.checkpoint.keep_last) < done.size(); ++i) fs::remove_all(done[i].second, ec);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_info("checkpoint: saved ", final_dir, " in ", s, " s");
  }
  world.barrier();
  return true;
}

void Trainer::load_weights(const CheckpointReader& ck, bool with_optimizer) {
  const Config stored = load_saved_config_text(ck.manifest().config_yaml, ck.dir() + "/manifest.yaml");
  const std::string diff = model_difference(stored.model, cfg_.model);
  if (!diff.empty()) fail("checkpoint ", ck.dir(), ": incompatible model config: ", diff);
  std::vector<float> stage_p, stage_m, stage_v;
  const float* dev_base = model_->flat_params().f32();
  float* base = host_copy(model_->flat_params(), stage_p);
  float* m_host = host_copy(opt_->m(), stage_m);
  float* v_host = host_copy(opt_->v(), stage_v);
  const int64_t s0 = opt_->shard_begin(), s1 = opt_->shard_end();
  for (size_t i = 0; i < model_->params().size(); ++i) {
    const ParamSpec& spec = model_->registry()[i];
    const TpSlice& sl = model_->slices()[i];
    float* local = base + (model_->params()[i].f32() - dev_base);
    const std::vector<float> w = ck.assemble(spec, "param");
    for (int64_t j = 0; j < sl.numel(); ++j) local[j] = w[size_t(global_index(spec, sl, j))];
    if (!with_optimizer) continue;
    // Moments of this rank's shard of the flat arena.
    const int64_t off = local - base;
    const int64_t b = std::max(off, s0), e = std::min(off + sl.numel(), s1);
    if (b >= e) continue;
    for (const char* kind : {"exp_avg", "exp_avg_sq"}) {
      const std::vector<float> g = ck.assemble(spec, kind);
      float* dst = std::string(kind) == "exp_avg" ? m_host : v_host;
      for (int64_t j = b - off; j < e - off; ++j) dst[off + j - s0] = g[size_t(global_index(spec, sl, j))];
    }
  }
  copy_back(model_->flat_params(), stage_p);
  if (with_optimizer) {
    copy_back(opt_->m(), stage_m);
    copy_back(opt_->v(), stage_v);
  }
  model_->sync_compute_weights();
}

namespace {

// The newest checkpoint in root whose manifest and files verify, or none.
// Damaged ones (no manifest, a bad checksum) are skipped with a warning; when
// there are only damaged ones, resuming stops: starting fresh would bury them.
std::optional<CheckpointReader> newest_intact_checkpoint(const std::string& root, bool logger) {
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::error_code ec;
  if (root.empty() || !fs::is_directory(root, ec)) return std::nullopt;
  for (const auto& e : fs::directory_iterator(root)) {
    const int64_t step = finished_step(e.path().filename().string());
    if (step >= 0) steps.emplace_back(step, e.path());
  }
  std::sort(steps.rbegin(), steps.rend());
  std::vector<std::string> damaged;
  for (const auto& [step, dir] : steps) {
    try {
      return CheckpointReader(dir.string());
    } catch (const Error& e) {
      if (logger) log_warn("resume: skipping ", dir.string(), ": ", e.what());
      damaged.push_back(dir.filename().string());
    }
  }
  if (!damaged.empty()) {
    std::string names;
    for (const std::string& d : damaged) names += (names.empty() ? "" : ", ") + d;
    fail("resume auto: ", root, " holds no complete checkpoint, only damaged ones (", names,
         "), which are kept; repair one and pass it to --resume, or start a new run with another checkpoint.dir");
  }
  return std::nullopt;
}

}  // namespace

void Trainer::resume(const std::string& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<CheckpointReader> ck;
  if (spec == "auto") {
    ck = newest_intact_checkpoint(cfg_.checkpoint.dir, is_logger());
    if (!ck) {
      if (is_logger()) log_info("resume: no checkpoint in '", cfg_.checkpoint.dir, "', starting fresh");
      return;
    }
  } else {
    ck.emplace(spec);
  }
  const Config stored = load_saved_config_text(ck->manifest().config_yaml, ck->dir() + "/manifest.yaml");
  std::vector<std::string> notes;
  const std::string refused = resume_mismatch(stored, cfg_, notes);
  if (!refused.empty()) fail("resume ", ck->dir(), ": ", refused);
  if (is_logger())
    for (const std::string& n : notes) log_info("resume: changed since the checkpoint: ", n);
  load_weights(*ck, true);
  steps_done_ = saved_step_ = ck->manifest().step;
  resumed_ = true;
  if (loader_) loader_->restore(ck->manifest().data_state);
  if (is_logger())
    log_info("resume: ", ck->dir(), " at step ", steps_done_, " (saved with tp ", ck->manifest().tp, " pp ",
             ck->manifest().pp, " dp ", ck->manifest().dp, " zero ", ck->manifest().zero, "), loaded in ",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s");
}

void Trainer::check_fresh_run() {
  if (!is_logger()) return;  // rank 0 decides; its failure ends the job
  const std::string found = previous_run(cfg_);
  if (found.empty()) return;
  if (!force_) fail(found);
  log_info("--force: removed the previous run's ", clear_previous_run(cfg_));
}

void Trainer::init_from(const std::string& dir) {
  CheckpointReader ck(dir);
  load_weights(ck, false);
  if (is_logger()) log_info("init_from: weights of ", dir, " (step ", ck.manifest().step, "); fresh optimizer and data");
}

}  // namespace dt
