#include "data/tokenizer.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/tiktoken.hpp"

namespace dt {

// "byte", or else a path to a tiktoken rank file (data/tiktoken.hpp), whose
// stem picks the encoding: cl100k_base or r50k_base.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "byte") return make_byte_tokenizer();
  std::error_code ec;
  if (!std::filesystem::exists(spec, ec)) {
    fail("unknown tokenizer '", spec, "': no such file (expected \"byte\" or a tiktoken rank file such as ",
         "data/tokenizers/cl100k_base.tiktoken; launch/fetch_tokenizers.sh fetches cl100k_base and r50k_base)");
  }
  return make_tiktoken_tokenizer(spec);
}

std::string tokenizer_name(const std::string& spec) {
  if (spec == "byte") return spec;
  return std::filesystem::path(spec).stem().string();
}

}  // namespace dt
