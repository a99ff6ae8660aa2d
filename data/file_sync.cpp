#include "data/file_sync.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

}  // namespace dt
