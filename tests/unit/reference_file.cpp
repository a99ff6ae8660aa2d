#include "tests/unit/reference_file.hpp"

#include <regex>
#include <stdexcept>

namespace dt::testing {

namespace {

// The config is a flat JSON object of numbers, strings and booleans.
std::string json_value(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\"\\s*:\\s*(\"[^\"]*\"|[^,}]+)");
  if (!std::regex_search(json, m, re)) throw std::runtime_error("config_json has no " + key);
  std::string v = m[1];
  if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

}  // namespace

ReferenceFile::ReferenceFile(const std::string& path) {
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) throw std::runtime_error("cannot open " + path);
  hid_t attr = H5Aopen(file_, "config_json", H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  char* text = nullptr;
  H5Aread(attr, type, &text);
  std::string json = text;
  H5free_memory(text);
  H5Tclose(type);
  H5Aclose(attr);
  cfg_.vocab_size = std::stoll(json_value(json, "vocab_size"));
  cfg_.d_model = std::stoi(json_value(json, "d_model"));
  cfg_.n_layers = std::stoi(json_value(json, "n_layers"));
  cfg_.n_heads = std::stoi(json_value(json, "n_heads"));
  cfg_.n_kv_heads = std::stoi(json_value(json, "n_kv_heads"));
  cfg_.ffn_hidden = std::stoi(json_value(json, "ffn_hidden"));
  cfg_.rope_theta = std::stod(json_value(json, "rope_theta"));
  cfg_.norm_eps = std::stod(json_value(json, "norm_eps"));
  const std::string kind = json_value(json, "attention");
  if (kind == "diff") cfg_.attention = AttentionKind::Diff;
  else if (kind == "diff_v2") cfg_.attention = AttentionKind::DiffV2;
  else if (kind == "standard") cfg_.attention = AttentionKind::Standard;
  else throw std::runtime_error(path + ": unknown attention '" + kind + "'");
  cfg_.tie_embeddings = json_value(json, "tie_embeddings") == "true";
  if (std::stoi(json_value(json, "head_dim")) != cfg_.head_dim())
    throw std::runtime_error("head_dim in " + path +
                             " disagrees with d_model/(2·n_heads) for diff, d_model/n_heads otherwise");
}

ReferenceFile::~ReferenceFile() { H5Fclose(file_); }

bool ReferenceFile::has(const std::string& dataset) const {
  return H5Lexists(file_, dataset.c_str(), H5P_DEFAULT) > 0;
}

static std::vector<hsize_t> shape_of(hid_t ds) {
  hid_t space = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(nd);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Sclose(space);
  return dims;
}

template <typename T>
static std::vector<T> read_dataset(hid_t file, const std::string& name, hid_t type, std::vector<hsize_t>* dims) {
  hid_t ds = H5Dopen(file, name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error("reference has no dataset " + name);
  auto shape = shape_of(ds);
  size_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<T> out(n);
  H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Dclose(ds);
  if (dims) *dims = shape;
  return out;
}

std::vector<double> ReferenceFile::read(const std::string& name, std::vector<hsize_t>* dims) const {
  return read_dataset<double>(file_, name, H5T_NATIVE_DOUBLE, dims);
}

std::vector<int64_t> ReferenceFile::read_int(const std::string& name, std::vector<hsize_t>* dims) const {
  return read_dataset<int64_t>(file_, name, H5T_NATIVE_INT64, dims);
}

}  // namespace dt::testing
