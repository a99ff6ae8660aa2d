// Saving and loading the Trainer's state: weights (fp32 masters, λ and g_sub
// included), Adam moments, step, data position and the config (DESIGN §6).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "comm/mpi_communicator.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/watchdog.hpp"
#include "checkpoint/checkpoint.hpp"
#include "checkpoint/hf_import.hpp"
#include "trainer/run_guard.hpp"
#include "trainer/trainer.hpp"

namespace dt {

namespace fs = std::filesystem;

namespace {

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
  const std::string name = checkpoint_dir_name(steps_done_);
  const std::string tmp = root + "/" + name + ".tmp", final_dir = root + "/" + name;
  // The save's collectives carry host values and metadata: world is an MPI
  // communicator on GPUs too (ProcessGrid).
  Communicator& world = grid_->world();
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
  std::vector<CheckpointFile> files;
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
        files.push_back(write_checkpoint_file(tmp, file, pieces, data));
      } catch (const Error&) {
        fail("writing ", file, " failed (disk full or I/O error", free_space(root), ")");
      }
    });
  }
  maybe_kill_during_save(mpi_world_rank(), steps_done_);
  failed = failed_somewhere();
  // Every rank's files and pieces, in the manifest's own YAML, on rank 0.
  const std::vector<std::string> entries = failed ? std::vector<std::string>{}
                                                  : world.gather_bytes(entries_to_yaml(files, pieces), 0);

  // Rank 0 publishes: the manifest, then the final name by rename.
  if (!failed && world.rank() == 0)
    attempt([&] {
      CheckpointManifest m;
      m.step = steps_done_;
      m.tokens_seen = steps_done_ * cfg_.train.global_batch_size * cfg_.train.seq_len;
      m.data_state = steps_done_ * cfg_.train.global_batch_size;
      m.total_steps = cfg_.total_steps();
      m.seed = cfg_.train.seed;
      m.tp = grid_->shape().tp, m.pp = grid_->shape().pp, m.dp = grid_->shape().dp, m.zero = cfg_.parallel.zero;
      m.config_yaml = config_to_yaml(cfg_);
      for (size_t r = 0; r < entries.size(); ++r)
        append_entries(entries[r], "the checkpoint entries of rank " + std::to_string(r), m);
      // Complete on disk before it gets its final name.
      write_file_atomically(tmp + "/manifest.yaml", manifest_to_yaml(m));
      // A directory of the same step (a run resumed from an older checkpoint,
      // or a damaged one; under this name or the unpadded step_<N> of older
      // versions) is moved aside, never deleted.
      std::vector<fs::path> same_step;
      for (const auto& e : fs::directory_iterator(root))
        if (finished_step(e.path().filename().string()) == steps_done_) same_step.push_back(e.path());
      for (const fs::path& old : same_step) {
        const fs::path aside = aside_name(old);
        fs::rename(old, aside);
        log_info("checkpoint: moved the existing ", old.string(), " aside to ", aside.string());
      }
      fs::rename(tmp, final_dir);
      fsync_dir(root);
    });
  failed = failed_somewhere();

  if (failed) {
    const std::vector<std::string> errors =
        world.gather_bytes(error.empty() ? "" : "rank " + std::to_string(world.rank()) + ": " + error, 0);
    if (world.rank() == 0) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      const std::string first = *std::find_if(errors.begin(), errors.end(), [](const std::string& e) { return !e.empty(); });
      const std::string kept = saved_step_ >= 0 ? checkpoint_dir_name(saved_step_) + " is kept"
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

namespace {

// Runs `load` on every rank of `world` and agrees on the outcome: "" when it
// succeeded everywhere, else on every rank the message of the lowest rank
// that failed, so all ranks fail (or skip the checkpoint) together and none
// trains on a model that another rank found damaged.
std::string agree_on_load(Communicator& world, const std::function<void()>& load) {
  std::string error;
  try {
    load();
  } catch (const Error& e) {
    error = e.what();
  }
  const int n = world.size();
  const int first = n - int(world.all_reduce_max(error.empty() ? 0.0 : double(n - world.rank())));
  return first == n ? "" : world.broadcast_bytes(error, first);
}

}  // namespace

std::string Trainer::load_weights(const CheckpointReader& ck, bool with_optimizer) {
  const Config stored = load_saved_config_text(ck.manifest().config_yaml, ck.dir() + "/manifest.yaml");
  const std::string diff = model_config_difference(stored.model, cfg_.model);
  if (!diff.empty()) fail("checkpoint ", ck.dir(), ": incompatible model config: ", diff);
  std::vector<float> stage_p, stage_m, stage_v;
  const float* dev_base = model_->flat_params().f32();
  float* base = host_copy(model_->flat_params(), stage_p);
  float* m_host = host_copy(opt_->m(), stage_m);
  float* v_host = host_copy(opt_->v(), stage_v);
  const int64_t s0 = opt_->shard_begin(), s1 = opt_->shard_end();
  // Each rank reads only the pieces that overlap its own slices.
  const std::string error = agree_on_load(grid_->world(), [&] {
    for (size_t i = 0; i < model_->params().size(); ++i) {
      const ParamSpec& spec = model_->registry()[i];
      const TpSlice& sl = model_->slices()[i];
      const int64_t off = model_->params()[i].f32() - dev_base;
      ck.read(spec, "param", sl, 0, sl.numel(), base + off);
      if (!with_optimizer) continue;
      // Moments of this rank's shard [s0, s1) of the flat arena.
      const int64_t b = std::max(off, s0), e = std::min(off + sl.numel(), s1);
      if (b >= e) continue;
      ck.read(spec, "exp_avg", sl, b - off, e - off, m_host + (b - s0));
      ck.read(spec, "exp_avg_sq", sl, b - off, e - off, v_host + (b - s0));
    }
  });
  if (!error.empty()) return error;
  copy_back(model_->flat_params(), stage_p);
  if (with_optimizer) {
    copy_back(opt_->m(), stage_m);
    copy_back(opt_->v(), stage_v);
  }
  model_->sync_compute_weights();
  return "";
}

void Trainer::resume(const std::string& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  // Newest first for auto; damaged ones (no manifest, a bad checksum on any
  // rank) are skipped with a warning; when there are only damaged ones,
  // resuming stops: starting fresh would bury them.
  std::vector<std::string> candidates;
  if (spec != "auto") {
    candidates.push_back(spec);
  } else {
    std::vector<std::pair<int64_t, fs::path>> steps;
    std::error_code ec;
    const std::string& root = cfg_.checkpoint.dir;
    if (!root.empty() && fs::is_directory(root, ec))
      for (const auto& e : fs::directory_iterator(root)) {
        const int64_t step = finished_step(e.path().filename().string());
        if (step >= 0) steps.emplace_back(step, e.path());
      }
    std::sort(steps.rbegin(), steps.rend());
    for (const auto& s : steps) candidates.push_back(s.second.string());
  }
  std::vector<std::string> damaged;
  for (const std::string& dir : candidates) {
    std::optional<CheckpointReader> ck;
    std::string error;
    try {
      ck.emplace(dir, Verify::what_is_read);
    } catch (const Error& e) {
      error = e.what();
    }
    if (error.empty()) {
      const Config stored = load_saved_config_text(ck->manifest().config_yaml, ck->dir() + "/manifest.yaml");
      std::vector<std::string> notes;
      const std::string refused = resume_mismatch(stored, cfg_, notes);
      if (!refused.empty()) fail("resume ", ck->dir(), ": ", refused);
      if (is_logger())
        for (const std::string& n : notes) log_info("resume: changed since the checkpoint: ", n);
      error = load_weights(*ck, true);
    }
    if (!error.empty()) {
      if (spec != "auto") fail(error);
      if (is_logger()) log_warn("resume: skipping ", dir, ": ", error);
      damaged.push_back(fs::path(dir).filename().string());
      continue;
    }
    steps_done_ = saved_step_ = ck->manifest().step;
    resumed_ = true;
    if (loader_) loader_->restore(ck->manifest().data_state);
    if (is_logger())
      log_info("resume: ", ck->dir(), " at step ", steps_done_, " (saved with tp ", ck->manifest().tp, " pp ",
               ck->manifest().pp, " dp ", ck->manifest().dp, " zero ", ck->manifest().zero, "), loaded in ",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s, ",
               ck->bytes_read(), " bytes read on rank 0");
    return;
  }
  if (!damaged.empty()) {
    std::string names;
    for (const std::string& d : damaged) names += (names.empty() ? "" : ", ") + d;
    fail("resume auto: ", cfg_.checkpoint.dir, " holds no complete checkpoint, only damaged ones (", names,
         "), which are kept; repair one and pass it to --resume, or start a new run with another checkpoint.dir");
  }
  if (is_logger()) log_info("resume: no checkpoint in '", cfg_.checkpoint.dir, "', starting fresh");
}

void Trainer::check_fresh_run() {
  if (!is_logger()) return;  // rank 0 decides; its failure ends the job
  const std::string found = previous_run(cfg_);
  if (found.empty()) return;
  if (!force_) fail(found);
  log_info("--force: removed the previous run's ", clear_previous_run(cfg_));
}

// hf:DIR, a Hugging Face DiffLlama or Llama model (checkpoint/hf_import.hpp):
// each rank reads its own slices of the weights, as from a checkpoint.
void Trainer::init_from_hf(const std::string& dir) {
  std::optional<HfCheckpoint> hf;
  std::vector<float> stage;
  const float* dev_base = model_->flat_params().f32();
  float* base = host_copy(model_->flat_params(), stage);
  const std::string error = agree_on_load(grid_->world(), [&] {
    hf.emplace(dir, cfg_.model);
    for (size_t i = 0; i < model_->params().size(); ++i)
      hf->read(model_->registry()[i], model_->slices()[i], base + (model_->params()[i].f32() - dev_base));
  });
  if (!error.empty()) fail("checkpoint.init_from: ", error);
  copy_back(model_->flat_params(), stage);
  model_->sync_compute_weights();
  if (is_logger()) {
    for (const std::string& n : hf->notes()) log_info("init_from: ", n);
    log_info("init_from: weights of the Hugging Face model hf:", dir, "; fresh optimizer and data");
  }
}

void Trainer::init_from(const std::string& dir) {
  if (dir.rfind("hf:", 0) == 0) return init_from_hf(dir.substr(3));
  CheckpointReader ck(dir, Verify::what_is_read);
  const std::string error = load_weights(ck, false);
  if (!error.empty()) fail(error);
  if (is_logger()) log_info("init_from: weights of ", dir, " (step ", ck.manifest().step, "); fresh optimizer and data");
}

}  // namespace dt
