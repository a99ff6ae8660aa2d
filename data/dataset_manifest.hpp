// A dataset directory's table of contents (DESIGN §5): DIR/dataset.yaml lists
// the directory's shards with their token and document counts. difftron
// prepare writes it last, once every shard is complete, so it is what marks a
// dataset complete: shards without it are what an interrupted prepare (or one
// from before manifests) left, or an unfinished copy.
//
//   format: difftron-dataset
//   version: 1
//   num_tokens: 5131
//   num_docs: 12
//   shards:
//     - {file: shard_00000.h5, num_tokens: 5131, num_docs: 12}
//
// Every reader of datasets (the training loader, eval's perplexity windows
// and needle haystack) lists shards through dataset_shards() and opens them
// through open_listed_shard(), which refuse what the manifest does not vouch for.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard_reader.hpp"

namespace dt {

inline constexpr const char* kDatasetManifest = "dataset.yaml";

// Writes dir/dataset.yaml listing every *.h5 shard directly in dir, in name
// order, each opened and validated (ShardReader): via dataset.yaml.tmp,
// fsynced, renamed, the directory fsynced. Call it once the last shard is
// closed. Fails when dir holds no shard.
void write_dataset_manifest(const std::string& dir);

struct ListedShard {
  std::string path;
  int64_t num_tokens = 0;  // as the manifest lists it
};

// The shards of a dataset: spec is a directory, a glob or one shard file
// (list_files order, *.h5 only). Each shard must be listed in the manifest of
// its own directory, and a directory's listed shards must all be there.
// One-line errors naming spec: no such file, no manifest ("incomplete
// dataset"), a malformed manifest, a shard it does not list, a listed shard
// that is missing.
std::vector<ListedShard> dataset_shards(const std::string& spec);

// Opens a shard dataset_shards() listed (ShardReader's one-line errors) and
// checks that it holds the tokens its manifest lists.
ShardReader open_listed_shard(const ListedShard& shard);

}  // namespace dt
