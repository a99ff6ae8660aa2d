#include "data/tokenizer.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/hf_tokenizer.hpp"
#include "data/tiktoken.hpp"

namespace dt {
namespace {

bool is_json_spec(const std::string& spec) { return std::filesystem::path(spec).extension() == ".json"; }

}  // namespace

// "byte"; a path ending in .json: a Hugging Face tokenizer.json; any other
// path: a tiktoken rank file (data/tiktoken.hpp), whose stem picks the encoding.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "byte") return make_byte_tokenizer();
  std::error_code ec;
  if (!std::filesystem::exists(spec, ec)) {
    fail("unknown tokenizer '", spec, "': no such file (expected \"byte\", a Hugging Face tokenizer.json of a ",
         "byte-level BPE model, or a tiktoken rank file such as data/tokenizers/cl100k_base.tiktoken; ",
         "launch/fetch_tokenizers.sh fetches cl100k_base and r50k_base)");
  }
  if (is_json_spec(spec)) return make_hf_tokenizer(spec);
  return make_tiktoken_tokenizer(spec);
}

std::string tokenizer_name(const std::string& spec) {
  if (spec == "byte") return spec;
  const std::filesystem::path p(spec);
  if (is_json_spec(spec)) {
    // The directory of a relative "tokenizer.json" is the working directory.
    const std::string dir = std::filesystem::absolute(p).lexically_normal().parent_path().filename().string();
    return dir.empty() ? p.filename().string() : dir + "/" + p.filename().string();
  }
  return p.stem().string();
}

}  // namespace dt
