// Needle-in-a-haystack problems (eval/needle.hpp): every sequence is exactly L
// tokens, each needle's tokens sit exactly where its depth puts it, the
// haystack fills the rest in order, the question closes the sequence; the
// scorer's exact match; and the retrieval run's attention allocation adding
// up to each map's row mass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "core/error.hpp"
#include "data/tokenizer.hpp"
#include "eval/needle.hpp"
#include "eval/needle_eval.hpp"
#include "model/transformer.hpp"

namespace dt {
namespace {

std::vector<int32_t> haystack_tokens(const Tokenizer& tok) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Sentence " + std::to_string(i) + " of the haystack, about nothing much. ";
  return tok.encode(text);
}

TEST(NeedleGenerator, PlacesEachNeedleAtItsDepthAndFillsExactlyL) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> hay = haystack_tokens(*tok);
  NeedleSpec spec;
  spec.length = 600;
  spec.depths = {0.0, 0.5, 1.0, 0.25};
  spec.queries = 2;
  spec.seed = 42;
  const std::vector<NeedleSample> samples = make_needle_samples(*tok, hay, spec);
  ASSERT_EQ(samples.size(), 2u);
  std::set<std::string> cities, numbers;
  for (const Needle& n : samples[0].needles) cities.insert(n.city), numbers.insert(n.number);
  EXPECT_EQ(cities.size(), 4u);
  EXPECT_EQ(numbers.size(), 4u);

  for (int r = 0; r < 2; ++r) {
    const NeedleSample& s = samples[size_t(r)];
    EXPECT_EQ(int64_t(s.tokens.size()), spec.length);
    EXPECT_EQ(s.query, r);
    EXPECT_EQ(s.answer, s.needles[size_t(r)].number);
    // The question about needle r closes the sequence.
    const std::vector<int32_t> q = tok->encode(question_sentence(s.needles[size_t(r)].city));
    EXPECT_EQ(s.question_start, spec.length - int64_t(q.size()));
    EXPECT_TRUE(std::equal(q.begin(), q.end(), s.tokens.begin() + s.question_start));
    std::vector<char> in_needle(s.tokens.size(), 0);
    for (size_t i = 0; i < s.needles.size(); ++i) {
      const Needle& n = s.needles[i];
      ASSERT_EQ(n.number.size(), 7u);
      EXPECT_NE(n.number[0], '0');
      const std::vector<int32_t> t = tok->encode(needle_sentence(n.city, n.number));
      // start = round(depth · (L − question − needle))
      const int64_t want = std::llround(spec.depths[i] * double(s.question_start - int64_t(t.size())));
      EXPECT_EQ(n.start, want) << "needle " << i;
      EXPECT_EQ(n.end - n.start, int64_t(t.size()));
      EXPECT_TRUE(std::equal(t.begin(), t.end(), s.tokens.begin() + n.start)) << "needle " << i;
      for (int64_t p = n.start; p < n.end; ++p) in_needle[size_t(p)] = 1;
    }
    // Depth 1 ends right before the question.
    EXPECT_EQ(s.needles[2].end, s.question_start);
    // Every other position before the question is the haystack, in order, from one offset.
    std::vector<int32_t> filler;
    for (int64_t p = 0; p < s.question_start; ++p)
      if (!in_needle[size_t(p)]) filler.push_back(s.tokens[size_t(p)]);
    bool found = false;
    for (size_t o = 0; o < hay.size() && !found; ++o) {
      size_t j = 0;
      while (j < filler.size() && filler[j] == hay[(o + j) % hay.size()]) ++j;
      found = j == filler.size();
    }
    EXPECT_TRUE(found) << "the filler is not the haystack read in order from one offset";
  }
  // Same seed, same sample; another seed, other numbers.
  EXPECT_EQ(make_needle_samples(*tok, hay, spec)[0].tokens, samples[0].tokens);
  spec.seed = 43;
  EXPECT_NE(make_needle_samples(*tok, hay, spec)[0].answer, samples[0].answer);
}

TEST(NeedleGenerator, OverlappingNeedlesAreLaidEndToEndAndAShortHaystackRepeats) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> hay = tok->encode("tiny haystack. ");
  NeedleSpec spec;
  spec.length = 300;
  spec.depths = {0.5, 0.5, 0.5};
  // Spans in order of position: the first at its requested place, each next one right after.
  auto by_start = [](std::vector<Needle> n) {
    std::sort(n.begin(), n.end(), [](const Needle& a, const Needle& b) { return a.start < b.start; });
    return n;
  };
  const NeedleSample s = make_needle_samples(*tok, hay, spec)[0];
  EXPECT_EQ(s.tokens.size(), 300u);
  const std::vector<Needle> n = by_start(s.needles);
  EXPECT_EQ(n[0].start, std::llround(0.5 * double(s.question_start - (n[0].end - n[0].start))));
  EXPECT_EQ(n[1].start, n[0].end);
  EXPECT_EQ(n[2].start, n[1].end);
  for (const Needle& x : s.needles) {
    const std::vector<int32_t> t = tok->encode(needle_sentence(x.city, x.number));
    EXPECT_TRUE(std::equal(t.begin(), t.end(), s.tokens.begin() + x.start));
  }
  // Pushed past the question by the needle before it: moved back to end there.
  spec.depths = {1.0, 1.0};
  const NeedleSample e = make_needle_samples(*tok, hay, spec)[0];
  const std::vector<Needle> m = by_start(e.needles);
  EXPECT_EQ(m[1].end, e.question_start);
  EXPECT_EQ(m[0].end, m[1].start);
}

TEST(NeedleGenerator, ImpossibleSpecsAreOneLineErrors) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> hay = haystack_tokens(*tok);
  NeedleSpec spec;
  spec.length = 60;  // one needle (~45 bytes) and the question (~70) do not fit
  spec.depths = {0.5};
  EXPECT_THROW(make_needle_samples(*tok, hay, spec), Error);
  spec.length = 400;
  spec.queries = 2;  // R > N
  EXPECT_THROW(make_needle_samples(*tok, hay, spec), Error);
  spec.queries = 1;
  spec.depths = {1.5};
  EXPECT_THROW(make_needle_samples(*tok, hay, spec), Error);
  spec.depths = {0.5};
  EXPECT_THROW(make_needle_samples(*tok, {}, spec), Error);
  spec.depths = {};
  EXPECT_THROW(make_needle_samples(*tok, hay, spec), Error);
}

TEST(NeedleScorer, ExactMatchOfTheFirstDigitRun) {
  EXPECT_TRUE(needle_answer_matches("1234567", "1234567"));
  EXPECT_TRUE(needle_answer_matches("1234567.", "1234567"));
  EXPECT_TRUE(needle_answer_matches("   1234567. The", "1234567"));
  EXPECT_TRUE(needle_answer_matches(" the number 1234567 and 99", "1234567"));
  EXPECT_FALSE(needle_answer_matches("123456", "1234567"));
  EXPECT_FALSE(needle_answer_matches("12345678", "1234567"));
  EXPECT_FALSE(needle_answer_matches("123 4567", "1234567"));
  EXPECT_FALSE(needle_answer_matches("7654321 1234567", "1234567"));
  EXPECT_FALSE(needle_answer_matches(" no digits here.", "1234567"));
  EXPECT_FALSE(needle_answer_matches("", "1234567"));
  EXPECT_EQ(first_digit_run("ab 12x34"), "12");
  EXPECT_EQ(first_digit_run("none"), "");
}

TEST(NeedleEval, AllocationSharesAddUpToEachMapsRowMass) {
  auto tok = make_byte_tokenizer();
  const std::vector<int32_t> hay = haystack_tokens(*tok);
  for (AttentionKind kind : {AttentionKind::Diff, AttentionKind::Standard}) {
    ModelConfig cfg;
    cfg.vocab_size = 257;
    cfg.d_model = 32, cfg.n_layers = 2, cfg.n_heads = 2, cfg.n_kv_heads = 1, cfg.ffn_hidden = 40;
    cfg.attention = kind;
    Transformer model(cfg, 1, 8);
    model.init_weights(3);
    NeedleEvalOptions opt;
    opt.lengths = {200, 240};
    opt.depths = {0, 1};
    opt.needles = 2, opt.queries = 2;
    const NeedleEvalResult r = evaluate_needles(model, *tok, hay, opt);
    ASSERT_EQ(r.accuracy.size(), 4u);
    EXPECT_EQ(r.samples_per_cell, 2);
    for (double a : r.accuracy) EXPECT_TRUE(a == 0 || a == 0.5 || a == 1);
    EXPECT_EQ(r.allocation_samples, 8);
    ASSERT_EQ(r.maps.size(), kind == AttentionKind::Diff ? 3u : 1u);
    for (size_t m = 0; m < r.maps.size(); ++m)
      for (int l = 0; l < 2; ++l) {
        const AllocationShare& a = r.allocation[m][size_t(l)];
        // Softmax maps sum to 1; A1 − λ·A2 sums to 1 − λ.
        const double mass = r.maps[m] == "diff" ? 1.0 - model.lambda(l) : 1.0;
        EXPECT_NEAR(a.answer + a.noise + a.question, mass, 1e-5) << r.maps[m] << " layer " << l;
        EXPECT_GT(a.answer, r.maps[m] == "diff" ? -1.0 : 0.0);
      }
  }
}

}  // namespace
}  // namespace dt
