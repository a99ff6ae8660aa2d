// What a tokenizer.json that difftron cannot read gives: one line naming the
// file and what is wrong. Each case edits a fixture of tests/data/hf_tokenizer/.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/hf_tokenizer.hpp"
#include "data/tokenizer.hpp"
#include "tests/unit/test_util.hpp"

namespace {

using dt_test::error_of;
using dt_test::ScratchDir;

std::string fixture(const std::string& name) {
  return std::string(DT_TEST_DATA) + "/hf_tokenizer/" + name + "/tokenizer.json";
}

// The error of loading fixture `name` changed by `edit`, checked to be one
// line naming the file; "(no error)" if it loads.
std::string load_error(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  ScratchDir dir;
  std::ifstream in(fixture(name));
  nlohmann::json j = nlohmann::json::parse(in);
  edit(j);
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << j.dump();
  const std::string err = error_of([&] { dt::make_tokenizer(path); });
  if (err != "(no error)") {
    EXPECT_NE(err.find(path), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
  return err;
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(HfTokenizerErrors, OtherModelTypesAreNotSupported) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
    const std::string err = load_error("gpt2_style", [&](nlohmann::json& j) { j["model"]["type"] = type; });
    EXPECT_HAS(err, std::string("tokenizer.json model '") + type + "' is not supported (byte-level BPE only)");
  }
}

TEST(HfTokenizerErrors, SentencePieceStyleFilesAreNotSupported) {
  std::string err = load_error("gpt2_style", [](nlohmann::json& j) {
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}};
  });
  EXPECT_HAS(err, "'Metaspace' (SentencePiece-style) is not supported");
  err = load_error("gpt2_style", [](nlohmann::json& j) { j["model"]["byte_fallback"] = true; });
  EXPECT_HAS(err, "byte_fallback");
}

TEST(HfTokenizerErrors, NormalizersDecodersAndSplitOptionsOutsideTheSupportedSetAreNamed) {
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
             "normalizer 'Lowercase' is not supported");
  EXPECT_HAS(load_error("gpt2_style",
                        [](nlohmann::json& j) {
                          j["normalizer"] = {{"type", "Sequence"},
                                             {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
                        }),
             "normalizer 'Sequence' is not supported (only none or NFC)");
  EXPECT_EQ(load_error("gpt2_style",
                       [](nlohmann::json& j) {
                         j["normalizer"] = {{"type", "Sequence"}, {"normalizers", nlohmann::json::array()}};
                       }),
            "(no error)");
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["decoder"] = {{"type", "WordPiece"}}; }),
             "decoder 'WordPiece' is not supported");
  EXPECT_HAS(load_error("llama3_style",
                        [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; }),
             "pre_tokenizer.pretokenizers[0].behavior 'Removed' is not supported (only Isolated)");
  EXPECT_HAS(load_error("llama3_style",
                        [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; }),
             "invert true is not supported");
  EXPECT_HAS(load_error("llama3_style",
                        [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a"; }),
             "pre_tokenizer.pretokenizers[0].pattern does not compile");
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["pre_tokenizer"] = nullptr; }),
             "pre_tokenizer is missing");
}

TEST(HfTokenizerErrors, VocabAndMergeProblemsNameTheEntry) {
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["model"]["merges"][3] = "i nx"; }),
             "model.merges[3]: token 'nx' is not in model.vocab");
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["model"]["merges"][2] = "Ġthe"; }),
             "model.merges[2] 'Ġthe' is not two tokens separated by one space");
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["model"]["vocab"].erase("A"); }),
             "model.vocab has no token for byte 0x41");
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["model"]["vocab"]["A"] = "x"; }),
             "model.vocab[\"A\"] is \"x\", expected a token id");
}

TEST(HfTokenizerErrors, NoEndOfTextTokenIsAnError) {
  EXPECT_HAS(load_error("gpt2_style", [](nlohmann::json& j) { j["added_tokens"] = nlohmann::json::array(); }),
             "no end-of-text token");
}

TEST(HfTokenizerErrors, MalformedJsonNamesTheFileAndColumn) {
  ScratchDir dir;
  std::ifstream in(fixture("gpt2_style"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << text.substr(0, text.size() / 2);
  const std::string err = error_of([&] { dt::make_tokenizer(path); });
  EXPECT_HAS(err, path + ": invalid JSON");
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(HfTokenizerErrors, TokenizerConfigEosThatIsNoTokenNamesTheConfig) {
  ScratchDir dir;
  std::ifstream in(fixture("qwen2_style"));
  std::ofstream(dir.file("tokenizer.json")) << in.rdbuf();
  std::ofstream(dir.file("tokenizer_config.json")) << R"({"eos_token": "<|nope|>"})";
  const std::string err = error_of([&] { dt::make_tokenizer(dir.file("tokenizer.json")); });
  EXPECT_HAS(err, dir.file("tokenizer_config.json") + ": eos_token '<|nope|>' is not a token of");
  std::ofstream(dir.file("tokenizer_config.json")) << R"({"eos_token": )";
  EXPECT_HAS(error_of([&] { dt::make_tokenizer(dir.file("tokenizer.json")); }),
             dir.file("tokenizer_config.json") + ": invalid JSON");
}

}  // namespace
