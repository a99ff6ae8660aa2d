// fsync by path for the data files: a file before the rename that publishes
// it (a reader never sees half of it), and the directory after, so the rename
// itself survives a crash. One-line dt::Error on failure.
#pragma once
#include <string>

namespace dt {

void fsync_file(const std::string& path);
// Some filesystems refuse fsync on a directory (EINVAL): that is not an error.
void fsync_dir(const std::string& path);

}  // namespace dt
