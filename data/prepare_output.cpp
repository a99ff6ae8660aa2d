#include "data/prepare_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/dataset_manifest.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

// What a dataset directory holds: shards, the manifest, and the .tmp files of
// an interrupted prepare from before manifests.
bool is_dataset_file(const std::string& name) {
  const std::string manifest = kDatasetManifest;
  if (name == manifest || name == manifest + ".tmp") return true;
  return name.starts_with("shard_") && (name.ends_with(".h5") || name.ends_with(".h5.tmp"));
}

void rename_or_fail(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    fail(from, ": cannot rename to ", to, ": ", std::strerror(errno));
}

}  // namespace

PrepareOutput::PrepareOutput(const std::string& dir, bool force) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::absolute(dir), ec);  // a link to DIR: replace its target
  if (ec) fail(dir, ": cannot resolve the output directory: ", ec.message());
  if (!resolved.has_filename()) resolved = resolved.parent_path();  // "out/" -> "out"
  dir_ = resolved.string();
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    fail(dir, ": exists and is not a directory (expected a dataset directory to write)");
  int dataset_files = 0;
  std::string example;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_dataset_file(name))
      fail(dir, " holds ", name, ", which difftron prepare does not write: the new dataset replaces the whole ",
           "directory, so move that out or choose another --output");
    if (dataset_files++ == 0) example = name;
  }
  if (dataset_files > 0 && !force)
    fail(dir, " already holds a dataset (", dataset_files, " file(s) such as ", example,
         "; pass --force to replace it)");

  fs::create_directories(resolved.parent_path(), ec);
  // The pid makes the name ours: one left by a killed process with this pid is stale.
  tmp_ = dir_ + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp_, ec);
  if (!fs::create_directory(tmp_, ec))
    fail(tmp_, ": cannot create the temporary output directory", ec ? ": " + ec.message() : "");
}

PrepareOutput::~PrepareOutput() {
  if (done_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void PrepareOutput::commit() {
  DT_CHECK(!done_, "commit after commit or discard of ", tmp_);
  std::error_code ec;
  std::string old;  // where the replaced dataset ends up, to be removed
  if (!fs::exists(dir_, ec)) {
    rename_or_fail(tmp_, dir_);
  } else if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) == 0) {
    old = tmp_;  // the atomic swap: no moment without a complete dataset at dir
  } else {
    if (errno != EINVAL && errno != ENOSYS) fail(tmp_, ": cannot swap with ", dir_, ": ", std::strerror(errno));
    // A filesystem without the atomic swap (NFS, older kernels): move the old one aside first.
    old = dir_ + ".old-" + std::to_string(::getpid());
    rename_or_fail(dir_, old);
    if (std::rename(tmp_.c_str(), dir_.c_str()) != 0) {
      const int err = errno;
      std::rename(old.c_str(), dir_.c_str());
      fail(tmp_, ": cannot rename to ", dir_, ": ", std::strerror(err));
    }
  }
  done_ = true;
  fsync_dir(fs::path(dir_).parent_path().string());
  if (old.empty()) return;
  fs::remove_all(old, ec);
  if (ec) log_warn("difftron prepare: warning: cannot remove the replaced dataset, now at ", old, ": ", ec.message());
}

void PrepareOutput::discard() {
  if (done_) return;
  done_ = true;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

}  // namespace dt
