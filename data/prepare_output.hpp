// Where difftron prepare writes a dataset (DESIGN §5): not into DIR itself but
// into a directory beside it, DIR.tmp-<pid>, which replaces DIR only once the
// dataset is complete (every shard and the manifest written): one rename swaps
// the two directories, then the old dataset is removed. A prepare that fails,
// is interrupted or is killed never touches DIR, so `--force` cannot leave it
// empty or half-written.
#pragma once
#include <string>

namespace dt {

class PrepareOutput {
 public:
  // Checks dir (symbolic links resolved): when it holds a dataset (shards or a
  // manifest) and !force, fails naming it; when it holds anything prepare does
  // not write, fails naming that (the swap would throw it away). Then creates
  // the temporary directory (and dir's parents).
  PrepareOutput(const std::string& dir, bool force);
  ~PrepareOutput();  // removes the temporary directory unless commit() ran
  PrepareOutput(const PrepareOutput&) = delete;
  PrepareOutput& operator=(const PrepareOutput&) = delete;

  // The temporary directory: write the dataset here.
  const std::string& tmp() const { return tmp_; }
  // Puts the complete dataset in tmp() at dir (swapping it with the old one,
  // which is then removed), durably: the directories are fsynced.
  void commit();
  // Removes tmp() now; dir stays as it was.
  void discard();

 private:
  std::string dir_, tmp_;
  bool done_ = false;  // committed or discarded
};

}  // namespace dt
