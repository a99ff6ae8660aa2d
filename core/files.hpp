// Writing files so that a failure (disk full, I/O error, a crash) never leaves
// a half-written file under the final name, and never writes through
// something already there (a symlink, a device) in the destination's place.
#pragma once
#include <string>

namespace dt {

// Creates `path` for writing, only if nothing is there: never opens an
// existing file, symlink (dangling or not) or device (O_CREAT | O_EXCL).
// Returns the open fd (the caller closes it); fails with one line naming path.
// For temporaries that are renamed into place.
int create_exclusive(const std::string& path);

// "<path>.tmp.<pid>.<ns>": a name for a temporary beside path that no other
// process, and no earlier crashed run of this one, has used.
std::string temp_name_for(const std::string& path);

// Writes `text` to path: a new temporary in the same directory (O_EXCL, so an
// existing file or symlink of that name is never followed), every write
// checked, fsync, then rename over path; on failure the temporary is removed
// and dt::Error names the file and the reason (e.g. "No space left on
// device"). Refuses a path that exists and is not a regular file.
void write_file_atomically(const std::string& path, const std::string& text);

// fsync by path: a file before the rename that publishes it (a reader never
// sees half of it), and its directory after, so the rename itself survives a
// crash. Some filesystems refuse fsync on a directory (EINVAL): not an error.
void fsync_file(const std::string& path);
void fsync_dir(const std::string& path);

// The whole file as bytes, or one line "PATH: cannot open WHAT (reason)" /
// "cannot read WHAT" (what: e.g. "config file").
std::string read_whole_file(const std::string& path, const std::string& what);

// Appends `text` to the open descriptor, every byte, or fails naming `path`.
void write_all(int fd, const std::string& text, const std::string& path);

}  // namespace dt
