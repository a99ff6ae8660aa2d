// The byte-level tokenizer: one id per byte, so any input (including invalid
// UTF-8) round-trips exactly. Used by tests, the quickstart and the CPU bench.
#include "core/error.hpp"
#include "data/tokenizer.hpp"

namespace dt {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kEos = 256;

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
      if (id == kEos) continue;
      if (id < 0 || id > kEos)
        fail("byte tokenizer: cannot decode token id ", id, " (expected 0..", kEos, ")");
      out.push_back(static_cast<char>(id));
    }
    return out;
  }

  int64_t vocab_size() const override { return kEos + 1; }
  int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "byte"; }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace dt
