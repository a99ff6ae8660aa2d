#include "data/tokenizer.hpp"

#include <filesystem>

#include "core/error.hpp"

namespace dt {

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "byte") return make_byte_tokenizer();
  fail("unknown tokenizer '", spec, "' (only \"byte\" is supported in this build)");
}

std::string tokenizer_name(const std::string& spec) {
  if (spec == "byte") return spec;
  return std::filesystem::path(spec).stem().string();
}

}  // namespace dt
