// Hugging Face tokenizer.json files (data/hf_tokenizer.hpp) on the fixtures in
// tests/data/hf_tokenizer/ (tests/tools/make_hf_tokenizer_fixtures.py). In
// every fixture byte b has id b; merges get ids 256.. in merge order. Expected
// ids are derived by hand from the BPE rule (merge the adjacent pair of lowest
// merge rank, leftmost first) and shown step by step; "rN" is merge rank N.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "data/hf_tokenizer.hpp"
#include "data/tokenizer.hpp"
#include "tests/unit/test_util.hpp"

namespace {

using Ids = std::vector<int32_t>;
using dt_test::error_of;
using dt_test::ScratchDir;

std::string fixture(const std::string& name) {
  return std::string(DT_TEST_DATA) + "/hf_tokenizer/" + name + "/tokenizer.json";
}

nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The fixture `name` changed by `edit`, written to dir/tokenizer.json.
template <typename F>
std::string edited(const ScratchDir& dir, const std::string& name, F&& edit) {
  nlohmann::json j = load_json(fixture(name));
  edit(j);
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << j.dump();
  return path;
}

// --- GPT-2 style: ByteLevel with the GPT-2 pattern. Merges: r0 Ġ t=256,
// r1 h e=257, r2 Ġt he=258, r3 i n=259, r4 Ġ c=260, r5 a t=261, r6 Ġc at=262,
// r7 e r=263, r8 t h=264, r9 th e=265, r10 Ġ Ġ=266, r11 1 2=267;
// <|endoftext|> 268 (special, EOS), <sep> 269 (not special).

TEST(HfTokenizerGpt2Style, EncodesByMergeRankNotByWhetherThePieceIsAToken) {
  dt::HfTokenizer tok(fixture("gpt2_style"));
  // "the": pairs t·h r8, h·e r1 -> [t, he]; t·he is no merge, so the vocab
  // token "the" (265) is never reached.
  EXPECT_EQ(tok.encode("the"), (Ids{116, 257}));
  // " the": Ġ·t r0 -> [Ġt, h, e]; h·e r1 -> [Ġt, he]; Ġt·he r2 -> [Ġthe].
  EXPECT_EQ(tok.encode(" the"), (Ids{258}));
  // "the cat" -> pieces "the", " cat"; " cat": Ġ·c r4 -> [Ġc, a, t];
  // a·t r5 -> [Ġc, at]; Ġc·at r6 -> [Ġcat].
  EXPECT_EQ(tok.encode("the cat"), (Ids{116, 257, 262}));
  // "inner": i·n r3 -> [in, n, e, r]; e·r r7 -> [in, n, er].
  EXPECT_EQ(tok.encode("inner"), (Ids{259, 110, 263}));
  // "thethe": h·e r1 at 1 (leftmost of the two) then at 4 -> [t, he, t, he].
  EXPECT_EQ(tok.encode("thethe"), (Ids{116, 257, 116, 257}));
}

TEST(HfTokenizerGpt2Style, PiecesFollowTheGpt2Pattern) {
  dt::HfTokenizer tok(fixture("gpt2_style"));
  // "   x": \s+(?!\S) takes two spaces, " ?\p{L}+" takes " x"; Ġ·Ġ r10.
  EXPECT_EQ(tok.encode("   x"), (Ids{266, 32, 120}));
  // " ?\p{N}+" takes all of "12345"; 1·2 r11 -> [12, 3, 4, 5].
  EXPECT_EQ(tok.encode("12345"), (Ids{267, 51, 52, 53}));
  // "it's" -> "it", "'s"; no merges apply.
  EXPECT_EQ(tok.encode("it's"), (Ids{105, 116, 39, 115}));
}

TEST(HfTokenizerGpt2Style, SpecialTokensOnlyWhenAllowedNonSpecialAlways) {
  dt::HfTokenizer tok(fixture("gpt2_style"));
  // As text: pieces "a", "<|", "endoftext", "|>", "b"; no merges apply.
  EXPECT_EQ(tok.encode("a<|endoftext|>b"),
            (Ids{97, 60, 124, 101, 110, 100, 111, 102, 116, 101, 120, 116, 124, 62, 98}));
  EXPECT_EQ(tok.encode_with_special("a<|endoftext|>b"), (Ids{97, 268, 98}));
  EXPECT_EQ(tok.encode("x<sep>y"), (Ids{120, 269, 121}));
  EXPECT_EQ(tok.encode_with_special("x<sep>y"), (Ids{120, 269, 121}));
  EXPECT_EQ(tok.eos_id(), 268);
  EXPECT_EQ(tok.vocab_size(), 270);
}

TEST(HfTokenizerGpt2Style, DecodeMapsTheByteLevelAlphabetBackAndDropsEos) {
  dt::HfTokenizer tok(fixture("gpt2_style"));
  EXPECT_EQ(tok.decode(Ids{258, 262}), " the cat");
  EXPECT_EQ(tok.decode(Ids{265, 266, 10}), "the  \n");
  EXPECT_EQ(tok.decode(Ids{97, 268, 269}), "a<sep>");
  for (const char* text : {"the cat sat on the mat", "  \n\n\t x  ", "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD 123456",
                           "a<|endoftext|>b<sep>", "\xF0\x9F\x99\x82 it's 'S"})
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << text;
  const std::string err = error_of([&] { tok.decode(Ids{270}); });
  EXPECT_NE(err.find("270"), std::string::npos) << err;
}

TEST(HfTokenizerGpt2Style, AddPrefixSpaceAppliesToEachSegmentBetweenAddedTokens) {
  ScratchDir dir;
  const std::string path =
      edited(dir, "gpt2_style", [](nlohmann::json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; });
  dt::HfTokenizer tok(path);
  // "the cat" -> " the cat" -> " the" [258], " cat" [262].
  EXPECT_EQ(tok.encode("the cat"), (Ids{258, 262}));
  // "x", "y" around <sep> each become " x", " y".
  EXPECT_EQ(tok.encode("x<sep>y"), (Ids{32, 120, 269, 32, 121}));
}

// --- Llama 3 style: Split (Llama 3 pattern) + ByteLevel, ignore_merges.
// Merges: r0 Ġ w=256, r1 o r=257, r2 Ġw or=258, r3 l d=259, r4 Ġwor ld=260,
// r5 1 2=261, r6 12 3=262, r7 Ċ Ċ=263, r8 ' m=264, r9 ' M=265; "hello" 266
// (vocab only); <|begin_of_text|> 300, <|end_of_text|> 301 (EOS).

TEST(HfTokenizerLlama3Style, IgnoreMergesEmitsAPieceThatIsInTheVocabWhole) {
  dt::HfTokenizer tok(fixture("llama3_style"));
  // "hello" is a vocab token no merge makes; " world" is in the vocab too
  // (by merges: Ġ·w r0, o·r r1, Ġw·or r2, l·d r3, Ġwor·ld r4 -> the same 260).
  EXPECT_EQ(tok.encode("hello world"), (Ids{266, 260}));
  ScratchDir dir;
  dt::HfTokenizer merging(
      edited(dir, "llama3_style", [](nlohmann::json& j) { j["model"]["ignore_merges"] = false; }));
  EXPECT_EQ(merging.encode("hello world"), (Ids{104, 101, 108, 108, 111, 260}));
}

TEST(HfTokenizerLlama3Style, PiecesFollowTheSplitPattern) {
  dt::HfTokenizer tok(fixture("llama3_style"));
  // \p{N}{1,3}: "123" (in the vocab) then "45".
  EXPECT_EQ(tok.encode("12345"), (Ids{262, 52, 53}));
  // (?i:'m) takes "'M" as one piece: 'M is 265; "'m" is 264.
  EXPECT_EQ(tok.encode("I'M"), (Ids{73, 265}));
  EXPECT_EQ(tok.encode("I'm"), (Ids{73, 264}));
  // \s*[\r\n]+ takes "\n\n\n"; Ċ·Ċ r7 at 0 and 1: the leftmost -> [ĊĊ, Ċ].
  EXPECT_EQ(tok.encode("a\n\n\nb"), (Ids{97, 263, 10, 98}));
  // \s+(?!\S) leaves the last space to " world".
  EXPECT_EQ(tok.encode("  world"), (Ids{32, 260}));
  // Specials as text: "<|", "end", "_of", "_text", "|>"; no merges apply.
  EXPECT_EQ(tok.encode("<|end_of_text|>"),
            (Ids{60, 124, 101, 110, 100, 95, 111, 102, 95, 116, 101, 120, 116, 124, 62}));
}

TEST(HfTokenizerLlama3Style, SpecialTokensEosAndVocabSize) {
  dt::HfTokenizer tok(fixture("llama3_style"));
  EXPECT_EQ(tok.encode_with_special("<|begin_of_text|>hello world<|end_of_text|>"), (Ids{300, 266, 260, 301}));
  EXPECT_EQ(tok.eos_id(), 301);
  EXPECT_EQ(tok.vocab_size(), 302);
  EXPECT_EQ(tok.decode(Ids{300, 266, 301}), "<|begin_of_text|>hello");
  for (const int32_t bad : {280, 302, -1}) {
    const std::string err = error_of([&] { tok.decode(Ids{bad}); });
    EXPECT_NE(err.find(std::to_string(bad)), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

// --- Qwen 2 style: NFC, Split (single digits) + ByteLevel, merges as pairs,
// EOS from tokenizer_config.json. Merges: r0 Ġ h=256, r1 Ġh i=257, r2 ä ½=258,
// r3 ä½ ł=259 ("你" = E4 BD A0; A0 is 'ł' U+0142 in the alphabet), r4 1 2=260;
// <|endoftext|> 261, <|im_start|> 262, <|im_end|> 263.

TEST(HfTokenizerQwen2Style, MultiByteCharactersMergeThroughTheByteAlphabet) {
  dt::HfTokenizer tok(fixture("qwen2_style"));
  // " hi你12" -> " hi你", "1", "2" (\p{N} is one digit, so r4 never applies).
  // " hi你": Ġ·h r0, Ġh·i r1, ä·½ r2, ä½·ł r3 -> [Ġhi, 你].
  EXPECT_EQ(tok.encode(" hi\xE4\xBD\xA0" "12"), (Ids{257, 259, 49, 50}));
  EXPECT_EQ(tok.decode(Ids{259}), "\xE4\xBD\xA0");
  EXPECT_EQ(tok.encode_with_special("<|im_start|>hi<|im_end|>"), (Ids{262, 104, 105, 263}));
}

TEST(HfTokenizerQwen2Style, TextIsNfcNormalizedBeforePreTokenization) {
  dt::HfTokenizer tok(fixture("qwen2_style"));
  // "cafe" + U+0301 (combining acute) is "café" in NFC: é = U+00E9 = C3 A9;
  // one piece, no merges apply -> c a f C3 A9.
  const Ids want = {99, 97, 102, 195, 169};
  EXPECT_EQ(tok.encode("cafe\xCC\x81"), want);
  EXPECT_EQ(tok.encode("caf\xC3\xA9"), want);
  EXPECT_EQ(tok.decode(tok.encode("cafe\xCC\x81")), "caf\xC3\xA9");
}

TEST(HfTokenizerQwen2Style, EosComesFromTokenizerConfig) {
  dt::HfTokenizer tok(fixture("qwen2_style"));
  EXPECT_EQ(tok.eos_id(), 263);  // <|im_end|>, not <|endoftext|> (261)
  EXPECT_EQ(tok.vocab_size(), 264);
}

TEST(HfTokenizerSpec, MakeTokenizerAcceptsJsonAndNamesItByDirectoryAndFile) {
  const auto tok = dt::make_tokenizer(fixture("llama3_style"));
  EXPECT_EQ(tok->name(), "llama3_style/tokenizer.json");
  EXPECT_EQ(dt::tokenizer_name(fixture("llama3_style")), "llama3_style/tokenizer.json");
  EXPECT_EQ(dt::tokenizer_name("/models/Meta-Llama-3-8B/tokenizer.json"), "Meta-Llama-3-8B/tokenizer.json");
  EXPECT_EQ(dt::tokenizer_name("/models/x/../gpt2/tok.json"), "gpt2/tok.json");
  EXPECT_EQ(tok->encode("I'M"), (Ids{73, 265}));
  EXPECT_EQ(tok->encode_with_special("<|begin_of_text|>"), (Ids{300}));
}

TEST(HfTokenizerThreads, EncodeFromManyThreadsMatchesOneThreadAndLongRunsRoundTrip) {
  dt::HfTokenizer tok(fixture("llama3_style"));
  // Long runs take the heap path of the merge loop and stress the regex.
  std::vector<std::string> texts = {std::string(1 << 15, '\n'), std::string(1 << 15, ' ') + "x",
                                    std::string(1 << 15, '1'), "hello world I'M 12345\n\n\n"};
  const char* words[] = {"hello", " world", "\n\n", "'m", " 1234", " \xE4\xBD\xA0", "  ", "I'M"};
  std::string mixed;
  for (int i = 0; i < 4000; ++i) mixed += words[(i * 7 + i / 8) % 8];
  texts.push_back(mixed);
  std::vector<Ids> want;
  for (const auto& t : texts) {
    want.push_back(tok.encode(t));
    EXPECT_TRUE(tok.decode(want.back()) == t) << t.substr(0, 40);
  }
  EXPECT_EQ(want[0], Ids(1 << 14, 263));  // one piece; Ċ·Ċ r7 leftmost first: ĊĊ ĊĊ ...
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + t) % texts.size();
          mismatches[t] += tok.encode(texts[k]) != want[k];
        }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(HfTokenizerBytes, ByteLevelAlphabetMapsPrintableBytesToThemselvesAndTheRestFromU0100) {
  // Ġ Ċ ! ~ ł Ń ÿ
  EXPECT_EQ(dt::byte_level_text(" \n!~\xA0\xAD\xFF"), "\xC4\xA0\xC4\x8A!~\xC5\x82\xC5\x83\xC3\xBF");
  std::string bytes;
  EXPECT_TRUE(dt::byte_level_bytes("\xC4\xA0the", bytes));
  EXPECT_EQ(bytes, " the");
  EXPECT_FALSE(dt::byte_level_bytes("a b", bytes));       // ' ' is not in the alphabet
  EXPECT_FALSE(dt::byte_level_bytes("\xE4\xBD\xA0", bytes));  // nor is 你
}

}  // namespace
