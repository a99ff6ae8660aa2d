#include "core/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace dt {

namespace {

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail(path, ": cannot open for fsync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && err == EINVAL)) fail(path, ": fsync failed: ", std::strerror(err));
}

}  // namespace

void fsync_file(const std::string& path) { fsync_path(path, false); }
void fsync_dir(const std::string& path) { fsync_path(path.empty() ? "." : path, true); }

void write_all(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write ", path, ": ", n < 0 ? std::strerror(errno) : "no progress");
    done += size_t(n);
  }
}

int create_exclusive(const std::string& path) {
  // O_EXCL fails on any existing name, a symlink included (never followed).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd >= 0) return fd;
  if (errno == EEXIST)
    fail("cannot create ", path, ": something already exists there (a stale temporary or a symlink?); "
         "expected a new name, so nothing is written through an existing file");
  fail("cannot create ", path, ": ", std::strerror(errno), " (does its directory exist and is it writable?)");
}

std::string temp_name_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const auto ns = std::chrono::steady_clock::now().time_since_epoch().count();
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(uint64_t(ns) + counter++);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("cannot write ", path, ": it exists and is not a regular file (expected a file difftron may replace)");
  const std::string tmp = temp_name_for(path);
  const int fd = create_exclusive(tmp);
  try {
    write_all(fd, text, path);
    if (::fsync(fd) != 0) fail("cannot write ", path, ": ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(err));
  }
  const size_t slash = path.find_last_of('/');
  fsync_dir(slash == std::string::npos ? "." : path.substr(0, slash + (slash == 0)));
}

std::string read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open ", what, " (", std::strerror(errno), ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(path, ": cannot read ", what, " (", std::strerror(errno), ")");
  return text.str();
}

}  // namespace dt
