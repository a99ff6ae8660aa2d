// Pieces of the tiktoken tokenizer that need no rank file: base64, the rank
// table, the fast BPE merge against its reference, UTF-8 repair, and the
// pre-tokenizer's splits on hand-checked inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/pretokenize.hpp"
#include "data/tiktoken_bpe.hpp"
#include "data/tiktoken_ranks.hpp"

namespace {

TEST(TiktokenBase64, DecodesPaddedInputAndRejectsTheRest) {
  EXPECT_EQ(dt::base64_decode("").value(), "");
  EXPECT_EQ(dt::base64_decode("IQ==").value(), "!");
  EXPECT_EQ(dt::base64_decode("aGk=").value(), "hi");
  EXPECT_EQ(dt::base64_decode("aGV5").value(), "hey");
  EXPECT_EQ(dt::base64_decode("/+8=").value(), "\xff\xef");
  for (const char* bad : {"IQ", "IQ=", "I===", "IQ=A", "=IQA", "I*==", "aGV5IQ==x"})
    EXPECT_FALSE(dt::base64_decode(bad).has_value()) << bad;
}

// Every byte, plus merges over {a, b, c} with random ranks: many ties and
// overlapping candidates, the cases where merge order matters.
dt::RankTable synthetic_ranks(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::pair<std::string, int32_t>> pairs;
  std::vector<int32_t> ranks(3000);
  for (size_t i = 0; i < ranks.size(); ++i) ranks[i] = static_cast<int32_t>(i);
  std::shuffle(ranks.begin() + 256, ranks.end(), rng);  // single bytes keep ranks 0..255
  for (int b = 0; b < 256; ++b) pairs.emplace_back(std::string(1, static_cast<char>(b)), b);
  std::set<std::string> seen;
  size_t next = 256;
  while (next < ranks.size()) {
    std::string t(2 + rng() % 6, 'a');
    for (char& c : t) c = "abc"[rng() % 3];
    if (seen.insert(t).second) pairs.emplace_back(t, ranks[next++]);
  }
  return dt::RankTable::from_pairs(pairs);
}

TEST(TiktokenBpe, HeapMergeEqualsScanReferenceOnLongPieces) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const dt::RankTable ranks = synthetic_ranks(seed);
    std::mt19937 rng(seed * 77);
    for (int trial = 0; trial < 60; ++trial) {
      std::string piece(dt::kBpeScanMaxBytes + 1 + rng() % 1500, 'a');
      const int alphabet = trial % 3 + 1;  // "aaaa..." runs are all ties
      for (char& c : piece) c = "abc"[rng() % alphabet];
      std::vector<int32_t> fast, reference;
      dt::bpe_merge(ranks, piece, fast);
      dt::bpe_merge_reference(ranks, piece, reference);
      ASSERT_EQ(fast, reference) << "seed " << seed << " trial " << trial << " length " << piece.size();
      std::string joined;
      for (int32_t id : fast) joined += ranks.token(id);
      EXPECT_EQ(joined, piece);
    }
  }
}

TEST(TiktokenBpe, LowestRankMergesFirstAndTiesGoLeft) {
  // "ab" (rank 256) beats "bc" (257); in "aaa" the left pair merges first.
  std::vector<std::pair<std::string, int32_t>> pairs;
  for (int b = 0; b < 256; ++b) pairs.emplace_back(std::string(1, static_cast<char>(b)), b);
  pairs.insert(pairs.end(), {{"ab", 256}, {"bc", 257}, {"aa", 258}, {"abc", 300}});
  const auto ranks = dt::RankTable::from_pairs(pairs);
  auto merge = [&](const std::string& s) {
    std::vector<int32_t> out;
    dt::bpe_merge(ranks, s, out);
    return out;
  };
  EXPECT_EQ(merge("abd"), (std::vector<int32_t>{256, 'd'}));
  EXPECT_EQ(merge("abc"), (std::vector<int32_t>{300}));  // "ab" first, then "ab"+"c" is the token "abc"
  EXPECT_EQ(merge("aaa"), (std::vector<int32_t>{258, 'a'}));
  EXPECT_EQ(merge("xbc"), (std::vector<int32_t>{'x', 257}));
  EXPECT_EQ(ranks.find("abc"), 300);
  EXPECT_EQ(ranks.find("abd"), -1);
  EXPECT_EQ(ranks.find(""), -1);
}

TEST(TiktokenRanks, DuplicateRanksOrBytesAreErrors) {
  auto err = [](std::vector<std::pair<std::string, int32_t>> pairs) {
    try {
      dt::RankTable::from_pairs(pairs, "t");
    } catch (const dt::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err({{"a", 0}, {"b", 0}}).find("rank 0 appears twice"), std::string::npos);
  EXPECT_NE(err({{"a", 0}, {"a", 1}}).find("same bytes"), std::string::npos);
  EXPECT_NE(err({{"", 0}}).find("empty"), std::string::npos);
}

TEST(TiktokenUtf8, RepairReplacesEachMaximalSubpartWithOneReplacementChar) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(dt::replace_invalid_utf8("abc"), "abc");
  EXPECT_EQ(dt::replace_invalid_utf8("\xE2\x82" "abc"), R + "abc");             // truncated 3-byte: one
  EXPECT_EQ(dt::replace_invalid_utf8("\x80\x80"), R + R);                         // lone continuations: each
  EXPECT_EQ(dt::replace_invalid_utf8("\xC0\xAF"), R + R);                         // C0 is never a lead
  EXPECT_EQ(dt::replace_invalid_utf8("\xE0\x80\xAF"), R + R + R);                 // overlong: E0 needs A0..BF
  EXPECT_EQ(dt::replace_invalid_utf8("\xED\xA0\x80"), R + R + R);                 // surrogate: ED needs 80..9F
  EXPECT_EQ(dt::replace_invalid_utf8("\xF4\x90\x80\x80"), R + R + R + R);         // above U+10FFFF
  EXPECT_EQ(dt::replace_invalid_utf8("\xF0\x9F\x98" " x"), R + " x");             // truncated 4-byte: one
  EXPECT_EQ(dt::replace_invalid_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");    // valid emoji kept
  EXPECT_EQ(dt::replace_invalid_utf8("caf\xC3"), "caf" + R);
  EXPECT_TRUE(dt::is_valid_utf8("plain ascii text, long enough for the 8-byte path"));
  EXPECT_TRUE(dt::is_valid_utf8("\xEF\xBF\xBF\xF4\x8F\xBF\xBF"));  // U+FFFF, U+10FFFF
  EXPECT_FALSE(dt::is_valid_utf8("0123456789abcdef\xFF"));
}

std::vector<std::string> pieces(const dt::Pretokenizer& p, const std::string& text) {
  std::vector<std::string> out;
  p.split(text, [&](std::string_view s) { out.emplace_back(s); });
  return out;
}

using P = std::vector<std::string>;

TEST(TiktokenPretokenizer, Cl100kSplitsAsTheReferenceRegex) {
  const dt::Pretokenizer p("cl100k_base");
  EXPECT_EQ(pieces(p, "Hello, world!"), (P{"Hello", ",", " world", "!"}));
  EXPECT_EQ(pieces(p, "I'LL don't"), (P{"I", "'LL", " don", "'t"}));
  EXPECT_EQ(pieces(p, "12345 x"), (P{"123", "45", " x"}));
  EXPECT_EQ(pieces(p, "a   b"), (P{"a", "  ", " b"}));
  EXPECT_EQ(pieces(p, "a \n "), (P{"a", " \n "}));       // \s+$ : trailing whitespace is one piece
  EXPECT_EQ(pieces(p, "a \n b"), (P{"a", " \n", " b"}));  // \s*[\r\n]
  EXPECT_EQ(pieces(p, "x\xC2\x85y"), (P{"x", "\xC2\x85y"}));  // U+0085 is not JS whitespace
  EXPECT_EQ(pieces(p, "a\xEF\xBB\xBF"), (P{"a", "\xEF\xBB\xBF"}));  // U+FEFF is
}

TEST(TiktokenPretokenizer, R50kSplitsAsTheReferenceRegex) {
  const dt::Pretokenizer p("r50k_base");
  EXPECT_EQ(pieces(p, "Hello, world!"), (P{"Hello", ",", " world", "!"}));
  EXPECT_EQ(pieces(p, "I'LL don't"), (P{"I", "'", "LL", " don", "'t"}));  // contractions are lower case only
  EXPECT_EQ(pieces(p, "12345 x"), (P{"12345", " x"}));
  EXPECT_EQ(pieces(p, "a   b\n"), (P{"a", "  ", " b", "\n"}));
}

}  // namespace
