// A tokenizer.json converted from r50k_base.tiktoken (GPT-2) the way the
// tiktoken -> Hugging Face conversion does it encodes exactly as the tiktoken
// tokenizer; and the merge-list BPE's heap path equals its scan reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "data/hf_tokenizer.hpp"
#include "data/tiktoken.hpp"
#include "data/tiktoken_bpe.hpp"
#include "data/tiktoken_ranks.hpp"
#include "tests/unit/test_util.hpp"

namespace {

// GPT-2's byte-level alphabet, written out here independently of
// dt::byte_level_text: printable bytes stand for themselves, the other 68
// for U+0100.. in byte order.
std::string alphabet_text(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const unsigned b = static_cast<unsigned char>(c);
    unsigned cp = b, extra = 256;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      for (unsigned x = 0; x < b; ++x)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++extra;
      cp = extra;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xC0 | cp >> 6));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

// The conversion: vocab = ranks (token text in the alphabet); merges = for
// each token, in rank order, every split into two tokens, ordered by the
// ranks of the two halves. <|endoftext|> 50256 is the special added token.
void write_converted_r50k(const dt::RankTable& ranks, const std::string& path) {
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::tuple<int32_t, int32_t, int32_t, std::string, std::string>> merges;
  for (int32_t r = 0; r < ranks.end_rank(); ++r) {
    if (!ranks.has(r)) continue;
    const std::string_view t = ranks.token(r);
    vocab[alphabet_text(t)] = r;
    for (size_t i = 1; i < t.size(); ++i) {
      const int32_t a = ranks.find(t.substr(0, i)), b = ranks.find(t.substr(i));
      if (a >= 0 && b >= 0) merges.emplace_back(r, a, b, alphabet_text(t.substr(0, i)), alphabet_text(t.substr(i)));
    }
  }
  std::sort(merges.begin(), merges.end());
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& m : merges) merge_list.push_back(std::get<3>(m) + " " + std::get<4>(m));
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                     {"use_regex", true}};
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", true}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
                 {"vocab", vocab}, {"merges", merge_list}}}};
  std::ofstream(path) << j.dump();
}

TEST(HfTokenizerFromTiktoken, ConvertedR50kEncodesExactlyAsTheTiktokenTokenizer) {
  const std::string rank_file = std::string(DT_SOURCE_DIR) + "/data/tokenizers/r50k_base.tiktoken";
  if (!std::filesystem::exists(rank_file))
    GTEST_SKIP() << rank_file << " is missing: run launch/fetch_tokenizers.sh";
  dt_test::ScratchDir dir;
  std::filesystem::create_directory(dir.file("gpt2"));
  const std::string path = dir.file("gpt2/tokenizer.json");
  write_converted_r50k(dt::RankTable::load(rank_file), path);
  const dt::HfTokenizer hf(path);
  const dt::TiktokenTokenizer tiktoken(rank_file);
  EXPECT_EQ(hf.vocab_size(), tiktoken.vocab_size());
  EXPECT_EQ(hf.eos_id(), tiktoken.eos_id());

  std::vector<std::string> texts = {
      "Hello, world! It's 2024; we'll see 1234567 numbers and 3.14159, 1e-10, 0x1F.",
      "I'M, you're, they've, she'd, it'll, we'LL, O'Neil's",
      "a    b\n\n\n   c \t\t d  \r\n  e   \n",
      "Gr\xC3\xBC\xC3\x9F" "e aus K\xC3\xB6ln \xE2\x80\x94 na\xC3\xAFve caf\xC3\xA9",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 "
      "\xF0\x9F\x99\x82\xF0\x9F\x99\x83 \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",
      "    def f(x):\n        return x**2  # square\n\n",
      "<|endoftext|> is text here",
      "",
  };
  // A longer sample: the README, whole and in lines.
  std::ifstream readme(std::string(DT_SOURCE_DIR) + "/README.md");
  const std::string text((std::istreambuf_iterator<char>(readme)), std::istreambuf_iterator<char>());
  texts.push_back(text);
  for (size_t a = 0, b; a < text.size(); a = b + 1) {
    b = text.find('\n', a);
    if (b == std::string::npos) b = text.size();
    texts.push_back(text.substr(a, b - a + 1));
  }
  for (const std::string& t : texts) {
    EXPECT_EQ(hf.encode(t), tiktoken.encode(t)) << t.substr(0, 200);
    EXPECT_EQ(hf.decode(hf.encode(t)), t) << t.substr(0, 200);
  }
  EXPECT_EQ(hf.encode_with_special("a<|endoftext|>b"), tiktoken.encode_with_special("a<|endoftext|>b"));
}

// Every byte, plus random merges over {a, b, c} in a shuffled rank order:
// many ties and overlapping candidates, where the merge order matters.
TEST(HfTokenizerBpe, MergeListHeapPathEqualsScanReferenceOnLongPieces) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::mt19937 rng(seed);
    std::vector<std::pair<std::string, int32_t>> vocab;
    for (int b = 0; b < 256; ++b) vocab.emplace_back(std::string(1, static_cast<char>(b)), b);
    std::vector<std::string> tokens = {"a", "b", "c"};
    std::set<std::string> seen(tokens.begin(), tokens.end());
    std::vector<std::tuple<std::string, std::string>> merges;
    while (merges.size() < 600) {
      const std::string l = tokens[rng() % tokens.size()];
      const std::string r = tokens[rng() % tokens.size()];
      if (l.size() + r.size() > 8) continue;
      if (seen.insert(l + r).second) {
        vocab.emplace_back(l + r, static_cast<int32_t>(vocab.size()));
        tokens.push_back(l + r);
      }
      merges.emplace_back(l, r);
    }
    const dt::RankTable table = dt::RankTable::from_pairs(vocab);
    std::vector<int32_t> rank(merges.size());
    for (size_t i = 0; i < rank.size(); ++i) rank[i] = static_cast<int32_t>(i);
    std::shuffle(rank.begin(), rank.end(), rng);
    dt::MergeTable mt;
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [l, r] = merges[i];
      mt.add(table.find(l), table.find(r), rank[i], table.find(l + r));
    }
    for (int trial = 0; trial < 60; ++trial) {
      std::string piece(dt::kBpeScanMaxBytes + 1 + rng() % 1500, 'a');
      const int alphabet = trial % 3 + 1;  // "aaaa..." runs are all ties
      for (char& c : piece) c = "abc"[rng() % alphabet];
      std::vector<int32_t> fast, reference;
      dt::bpe_merge_pairs(table, mt, piece, fast);
      dt::bpe_merge_pairs_reference(table, mt, piece, reference);
      ASSERT_EQ(fast, reference) << "seed " << seed << " trial " << trial;
      std::string joined;
      for (const int32_t id : fast) joined += table.token(id);
      ASSERT_EQ(joined, piece);
    }
  }
}

}  // namespace
