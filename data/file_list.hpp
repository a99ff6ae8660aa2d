// Turns user paths (files, directories, globs) into a sorted list of files.
#pragma once
#include <string>
#include <vector>

namespace dt {

// Regular files named by spec: the file itself, every regular file under a
// directory (recursively when recurse, else its direct entries), or every
// regular file matching a glob (a matched directory is expanded the same way).
// Directory contents are sorted by path so the order never depends on the
// filesystem. When suffix is non-empty, directory and glob results keep only
// names ending in it (a file named explicitly is always kept).
// Fails with a one-line error naming spec when nothing matches.
std::vector<std::string> list_files(const std::string& spec, bool recurse, const std::string& suffix = "");

}  // namespace dt
