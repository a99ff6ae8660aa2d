// Reads the golden files of tests/data (float64 outputs of an independent
// implementation of DESIGN §2; see tests/data/reference_README.md).
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

#include "core/config.hpp"

namespace dt::testing {

class ReferenceFile {
 public:
  explicit ReferenceFile(const std::string& path);
  ~ReferenceFile();
  ModelConfig config() const { return cfg_; }
  bool has(const std::string& dataset) const;
  std::vector<double> read(const std::string& dataset, std::vector<hsize_t>* dims = nullptr) const;
  std::vector<int64_t> read_int(const std::string& dataset, std::vector<hsize_t>* dims = nullptr) const;

 private:
  hid_t file_;
  ModelConfig cfg_;
};

}  // namespace dt::testing
