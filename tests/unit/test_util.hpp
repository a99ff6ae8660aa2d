// Helpers shared by tests: scratch directories, error messages, real-text shards.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <functional>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"

namespace dt_test {

// A fresh directory under ::testing::TempDir(), removed at the end of the test.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "/dt_test_XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// The message of the dt::Error f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// One byte-tokenized shard of the Debian licence texts (real English prose,
// present on every Debian machine) at dir/shard_00000.h5. Returns the unigram
// entropy (nats) of the tokens written: the loss of a model that ignores context.
inline double write_licence_shard(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto tok = dt::make_tokenizer("byte");
  dt::ShardWriter w(dir + "/shard_00000.h5", tok->name(), tok->vocab_size(), tok->eos_id());
  std::vector<double> counts(size_t(tok->vocab_size()), 0.0);
  double total = 0;
  for (const auto& e : fs::directory_iterator("/usr/share/common-licenses")) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<int32_t> ids = tok->encode(ss.str());
    w.add_document(ids);
    for (int32_t id : ids) counts[size_t(id)] += 1;
    counts[size_t(tok->eos_id())] += 1;
    total += double(ids.size() + 1);
  }
  w.close();
  double entropy = 0;
  for (double c : counts)
    if (c > 0) entropy -= c / total * std::log(c / total);
  return entropy;
}

}  // namespace dt_test
