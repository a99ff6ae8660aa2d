// Multi-needle retrieval problems (the LWM / Gemini 1.5 protocol the DIFF
// Transformer paper uses), built at the token level with any Tokenizer.
//
// A needle is the sentence " The magic number of <city> is <7 digits>." and
// N of them, each for a different city, are inserted into haystack text. The
// question " What is the magic number of <city>? The magic number of <city> is"
// ends the sequence, and the model's greedy continuation must contain the
// number. A base model continues one such prompt at a time, so the R queried
// needles give R sequences: the same haystack and needles, each closed by the
// question about one queried needle.
//
// Layout of one sequence of exactly L tokens (q = question tokens, n_i = needle
// i's tokens): needle i starts at round(depth_i · (L − q − n_i)), a position
// that ignores sentence boundaries; the haystack stream, from a seeded offset
// (and repeated when too short), fills every other position before the
// question, in order. Needles whose requested spans would overlap are laid
// end to end (the earlier-starting one keeps its place), and moved back from
// the question if that runs past it; requested spans that do not overlap are
// placed exactly.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dt {

class Tokenizer;

struct NeedleSpec {
  int64_t length = 0;          // L: tokens per sequence, question included
  std::vector<double> depths;  // one per needle (N of them), each in [0, 1]
  int queries = 1;             // R: needles 0 .. R−1 are the ones asked about
  uint64_t seed = 0;           // cities, numbers and the haystack offset
};

struct Needle {
  std::string city, number;  // number: 7 digits, no leading zero
  int64_t start = 0, end = 0;  // its tokens are [start, end) of the sequence
};

struct NeedleSample {
  std::vector<int32_t> tokens;  // exactly L
  int64_t question_start = 0;   // the question is tokens [question_start, L)
  std::vector<Needle> needles;  // all N, in the order of NeedleSpec::depths
  int query = 0;                // the needle this sequence asks about
  std::string answer;           // needles[query].number
};

// R sequences, one per queried needle (query = 0 .. R−1). Fails with a
// one-line dt::Error when the spec cannot be met: no needles, R outside
// 1..N, a depth outside [0, 1], more needles than the built-in city list,
// an empty haystack, or L too short to hold the needles and the question.
std::vector<NeedleSample> make_needle_samples(const Tokenizer& tok, std::span<const int32_t> haystack,
                                              const NeedleSpec& spec);

// The needle and question sentences (with their leading space).
std::string needle_sentence(const std::string& city, const std::string& number);
std::string question_sentence(const std::string& city);

// Scoring: the first run of ASCII digits in the decoded continuation ("" when
// none) must equal the expected number exactly.
std::string first_digit_run(std::string_view text);
bool needle_answer_matches(std::string_view decoded, std::string_view expected);

}  // namespace dt
