// The tiktoken tokenizers (cl100k_base, r50k_base) against the reference
// encoder's ids (tests/data/tokenizer/vectors_*.json, made by
// tests/tools/gen_tokenizer_vectors.mjs from gpt-tokenizer 4.0.0), plus round trips,
// special tokens, thread safety and the one-line errors. The rank files live in
// data/tokenizers/ (launch/fetch_tokenizers.sh); without them these tests skip.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "data/pretokenize.hpp"
#include "data/tiktoken.hpp"
#include "data/tiktoken_ranks.hpp"
#include "data/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

std::string rank_file(const std::string& encoding) {
  return std::string(DT_SOURCE_DIR) + "/data/tokenizers/" + encoding + ".tiktoken";
}

// One tokenizer per encoding for the whole binary (loading cl100k_base parses 100k lines).
const dt::TiktokenTokenizer* tokenizer(const std::string& encoding) {
  static std::map<std::string, std::unique_ptr<dt::TiktokenTokenizer>> loaded;
  auto& t = loaded[encoding];
  if (!t && fs::exists(rank_file(encoding))) t = std::make_unique<dt::TiktokenTokenizer>(rank_file(encoding));
  return t.get();
}

#define REQUIRE_TOKENIZER(var, encoding)                                                   \
  const dt::TiktokenTokenizer* var = tokenizer(encoding);                                  \
  if (!var) GTEST_SKIP() << rank_file(encoding) << " is missing: run launch/fetch_tokenizers.sh"

struct Vector {
  std::string name, input, repaired;  // repaired: set for invalid UTF-8 inputs
  bool valid_utf8 = true;
  std::vector<int32_t> ids;
};

std::vector<Vector> load_vectors(const std::string& encoding) {
  const std::string path = std::string(DT_TEST_DATA) + "/tokenizer/vectors_" + encoding + ".json";
  const YAML::Node root = YAML::LoadFile(path);  // JSON is YAML
  EXPECT_EQ(root["encoding"].as<std::string>(), encoding);
  std::vector<Vector> out;
  for (const auto& c : root["cases"]) {
    Vector v;
    v.name = c["name"].as<std::string>();
    v.input = dt::base64_decode(c["input"].as<std::string>()).value();
    if (c["repaired"]) {
      v.valid_utf8 = false;
      v.repaired = dt::base64_decode(c["repaired"].as<std::string>()).value();
    }
    v.ids = c["ids"].as<std::vector<int32_t>>();
    out.push_back(std::move(v));
  }
  return out;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const dt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dt_test_tiktoken_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name, std::ios::binary) << text;
    return path + "/" + name;
  }
};

class TiktokenReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TiktokenReference, EncodeGivesTheReferenceIdsOnEveryVector) {
  REQUIRE_TOKENIZER(tok, GetParam());
  const auto vectors = load_vectors(GetParam());
  ASSERT_GT(vectors.size(), 50u);
  for (const auto& v : vectors) EXPECT_EQ(tok->encode(v.input), v.ids) << v.name;
}

TEST_P(TiktokenReference, DecodeOfEncodeIsTheInputOrItsTextDecoderRepair) {
  REQUIRE_TOKENIZER(tok, GetParam());
  for (const auto& v : load_vectors(GetParam())) {
    EXPECT_EQ(dt::is_valid_utf8(v.input), v.valid_utf8) << v.name;
    EXPECT_EQ(tok->decode(tok->encode(v.input)), v.valid_utf8 ? v.input : v.repaired) << v.name;
  }
}

TEST_P(TiktokenReference, NameVocabAndEosFollowTheEncoding) {
  REQUIRE_TOKENIZER(tok, GetParam());
  const bool cl100k = GetParam() == "cl100k_base";
  EXPECT_EQ(tok->name(), GetParam());
  EXPECT_EQ(tok->name(), dt::tokenizer_name(rank_file(GetParam())));
  EXPECT_EQ(tok->vocab_size(), cl100k ? 100277 : 50257);
  EXPECT_EQ(tok->eos_id(), cl100k ? 100257 : 50256);
  EXPECT_EQ(dt::make_tokenizer(rank_file(GetParam()))->name(), GetParam());
}

TEST_P(TiktokenReference, EncodeFromManyThreadsMatchesOneThread) {
  REQUIRE_TOKENIZER(tok, GetParam());
  const auto vectors = load_vectors(GetParam());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = t; i < vectors.size() + t; ++i) {
          const auto& v = vectors[i % vectors.size()];
          mismatches[t] += tok->encode(v.input) != v.ids;
        }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_P(TiktokenReference, LongRunsEncodeInLinearishTimeAndRoundTrip) {
  REQUIRE_TOKENIZER(tok, GetParam());
  // Long runs stress the regex (whitespace backtracking) and BPE (one huge piece).
  std::string letters;
  uint32_t s = 1;
  for (int i = 0; i < (1 << 18); ++i) letters.push_back("etaoinshrdlu"[(s = s * 1664525u + 1013904223u) >> 28 & 7]);
  for (const std::string& text : {std::string(1 << 18, ' ') + "x", std::string(1 << 18, '\n'),
                                  std::string(1 << 18, 'a'), letters, std::string(1 << 18, '7')}) {
    const auto ids = tok->encode(text);
    EXPECT_LT(ids.size(), text.size());
    EXPECT_EQ(tok->decode(ids), text);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiktoken, TiktokenReference, ::testing::Values("cl100k_base", "r50k_base"),
                         [](const auto& info) { return info.param; });

// Where we part from the JS reference, on purpose: it turns token bytes into
// strings with a TextDecoder, which drops a leading U+FEFF, so it never finds
// the cl100k_base tokens that start with one. tiktoken looks up bytes, and so
// do we (ids read from the rank file: 3305 = EF BB BF, 4117 = EF BB BF "using").
TEST(TiktokenBom, TokensStartingWithAByteOrderMarkAreFoundByTheirBytes) {
  REQUIRE_TOKENIZER(tok, "cl100k_base");
  EXPECT_EQ(tok->encode("\xEF\xBB\xBF"), std::vector<int32_t>{3305});
  const auto ids = tok->encode("\xEF\xBB\xBFusing System;");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 4117);
  EXPECT_EQ(tok->decode(ids), "\xEF\xBB\xBFusing System;");
}

TEST(TiktokenSpecial, EncodeTreatsSpecialTokenTextAsOrdinaryText) {
  REQUIRE_TOKENIZER(tok, "cl100k_base");
  const std::string text = "a<|endoftext|>b<|fim_prefix|>";
  for (int32_t id : tok->encode(text)) EXPECT_LT(id, 100256);
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
}

TEST(TiktokenSpecial, EncodeWithSpecialGivesSpecialIdsBetweenOrdinarySegments) {
  REQUIRE_TOKENIZER(tok, "cl100k_base");
  auto cat = [](std::vector<std::vector<int32_t>> parts) {
    std::vector<int32_t> all;
    for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    return all;
  };
  EXPECT_EQ(tok->encode_with_special("Hello world<|endoftext|> next<|fim_prefix|>x<|fim_middle|>"
                                     "<|fim_suffix|><|endofprompt|>"),
            cat({tok->encode("Hello world"), {100257}, tok->encode(" next"), {100258}, tok->encode("x"),
                 {100259, 100260, 100276}}));
  EXPECT_EQ(tok->encode_with_special("<|endoftext|>"), std::vector<int32_t>{100257});
  EXPECT_EQ(tok->encode_with_special("no specials  \n"), tok->encode("no specials  \n"));
  // A half-written special token is text.
  EXPECT_EQ(tok->encode_with_special("<|endoftext|"), tok->encode("<|endoftext|"));
}

TEST(TiktokenSpecial, R50kKnowsOnlyEndOfText) {
  REQUIRE_TOKENIZER(tok, "r50k_base");
  EXPECT_EQ(tok->encode_with_special("a<|endoftext|>"), (std::vector<int32_t>{64, 50256}));
  EXPECT_EQ(tok->encode_with_special("<|fim_prefix|>"), tok->encode("<|fim_prefix|>"));
}

TEST(TiktokenSpecial, DecodeGivesSpecialTextExceptEosAndRejectsUnknownIds) {
  REQUIRE_TOKENIZER(tok, "cl100k_base");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{100258, 100257, 100276}), "<|fim_prefix|><|endofprompt|>");
  for (int32_t bad : {100256, 100261, 100275, 100277, -1}) {
    const std::string err = error_of([&] { tok->decode(std::vector<int32_t>{bad}); });
    EXPECT_NE(err.find(std::to_string(bad)), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

TEST(TiktokenErrors, MissingRankFileIsOneLineNamingTheFileAndByte) {
  const std::string err = error_of([] { dt::make_tokenizer("/nonexistent/cl100k_base.tiktoken"); });
  EXPECT_NE(err.find("/nonexistent/cl100k_base.tiktoken"), std::string::npos) << err;
  EXPECT_NE(err.find("\"byte\""), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(TiktokenErrors, BadBase64LineIsOneLineNamingFileAndLine) {
  TempDir dir;
  const std::string path = dir.write("cl100k_base.tiktoken", "IQ== 0\nIg== 1\n!!!= 2\n");
  const std::string err = error_of([&] { dt::make_tokenizer(path); });
  EXPECT_NE(err.find(path + ":3:"), std::string::npos) << err;
  EXPECT_NE(err.find("base64"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(TiktokenErrors, MalformedRankAndFieldCountNameTheLine) {
  TempDir dir;
  for (const std::string& line : {"IQ== x", "IQ==", "IQ== 1 2", "IQ== -3"}) {
    const std::string path = dir.write("r50k_base.tiktoken", "Ig== 0\n" + line + "\n");
    const std::string err = error_of([&] { dt::make_tokenizer(path); });
    EXPECT_NE(err.find(path + ":2:"), std::string::npos) << line << ": " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

TEST(TiktokenErrors, UnknownStemNamesTheFileAndTheSupportedEncodings) {
  TempDir dir;
  const std::string path = dir.write("gpt9_base.tiktoken", "IQ== 0\n");
  const std::string err = error_of([&] { dt::make_tokenizer(path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("cl100k_base"), std::string::npos) << err;
  EXPECT_NE(err.find("r50k_base"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(TiktokenErrors, RankFileOfTheWrongSizeForItsEncodingIsRejected) {
  TempDir dir;
  std::string text;
  for (int b = 0; b < 256; ++b) {
    // base64 of the single byte b: two characters and "==".
    static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    text += std::string{kAlphabet[b >> 2], kAlphabet[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  }
  const std::string path = dir.write("r50k_base.tiktoken", text);
  const std::string err = error_of([&] { dt::make_tokenizer(path); });
  EXPECT_NE(err.find("256 tokens"), std::string::npos) << err;
  EXPECT_NE(err.find("0..50255"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

}  // namespace
