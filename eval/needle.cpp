#include "eval/needle.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/tokenizer.hpp"

namespace dt {

namespace {

// Cities whose names are plain ASCII words, so every tokenizer handles them.
constexpr const char* kCities[] = {
    "Chicago",   "Yangon",   "Antananarivo", "Colombo",  "Almaty",    "Sydney",     "Mexico City", "Seattle",
    "Lagos",     "Amsterdam", "Belgrade",    "Cairo",    "Baghdad",   "Damascus",   "Kigali",      "Dakar",
    "Sofia",     "Victoria", "Tashkent",     "Mumbai",   "Barcelona", "Riyadh",     "Budapest",    "Lisbon",
    "Montreal",  "Nairobi",  "Oslo",         "Quito",    "Reykjavik", "Santiago",   "Tbilisi",     "Vienna",
    "Warsaw",    "Zagreb",   "Helsinki",     "Hanoi",    "Jakarta",   "Kathmandu",  "Lima",        "Manila",
    "Osaka",     "Perth",    "Prague",       "Rabat",    "Seoul",     "Tunis",      "Valencia",    "Winnipeg"};
constexpr int kNumCities = int(sizeof(kCities) / sizeof(kCities[0]));

uint64_t draw(uint64_t seed, const char* what, uint64_t i) { return rng_bits(seed, hash_name(what), i); }

// Start positions for needles of the given lengths requested at `want`, in a
// room of `room` tokens: exact when the requested spans do not overlap; an
// overlapping needle goes right after the one starting before it, and a run
// past the room's end is pushed back from the end.
std::vector<int64_t> place_needles(const std::vector<int64_t>& want, const std::vector<int64_t>& len, int64_t room) {
  const size_t N = want.size();
  std::vector<size_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return want[a] < want[b]; });
  std::vector<int64_t> start(N);
  int64_t end = 0;
  for (size_t k = 0; k < N; ++k) {
    const size_t i = order[k];
    start[i] = std::max(want[i], end);
    end = start[i] + len[i];
  }
  int64_t limit = room;
  for (size_t k = N; k-- > 0;) {
    const size_t i = order[k];
    start[i] = std::min(start[i], limit - len[i]);
    limit = start[i];
  }
  return start;
}

}  // namespace

std::string needle_sentence(const std::string& city, const std::string& number) {
  return " The magic number of " + city + " is " + number + ".";
}

std::string question_sentence(const std::string& city) {
  return " What is the magic number of " + city + "? The magic number of " + city + " is";
}

std::vector<NeedleSample> make_needle_samples(const Tokenizer& tok, std::span<const int32_t> haystack,
                                              const NeedleSpec& spec) {
  const int N = int(spec.depths.size());
  if (N < 1) fail("needle retrieval: no needles (expected at least one depth)");
  if (N > kNumCities) fail("needle retrieval: ", N, " needles; at most ", kNumCities, " (one city each)");
  if (spec.queries < 1 || spec.queries > N)
    fail("needle retrieval: ", spec.queries, " queried needles; expected 1..", N, " (the number of needles)");
  for (double dep : spec.depths)
    if (!(dep >= 0 && dep <= 1)) fail("needle retrieval: depth ", dep, " is outside [0, 1]");
  if (haystack.empty()) fail("needle retrieval: the haystack has no tokens");

  // N distinct cities (a seeded partial shuffle) and N distinct 7-digit numbers.
  std::vector<int> city(kNumCities);
  std::iota(city.begin(), city.end(), 0);
  for (int i = 0; i < N; ++i) {
    const uint64_t pick = uint64_t(i) + draw(spec.seed, "needle.city", uint64_t(i)) % uint64_t(kNumCities - i);
    std::swap(city[size_t(i)], city[pick]);
  }
  std::vector<Needle> needles(static_cast<size_t>(N));
  std::vector<std::vector<int32_t>> needle_tokens;
  std::vector<int64_t> len;
  for (int i = 0; i < N; ++i) {
    Needle& nd = needles[size_t(i)];
    nd.city = kCities[city[size_t(i)]];
    for (uint64_t attempt = 0;; ++attempt) {
      nd.number = std::to_string(1000000 + draw(spec.seed, "needle.number", uint64_t(i) * 1000 + attempt) % 9000000);
      if (std::none_of(needles.begin(), needles.begin() + i, [&](const Needle& o) { return o.number == nd.number; }))
        break;
    }
    needle_tokens.push_back(tok.encode(needle_sentence(nd.city, nd.number)));
    len.push_back(int64_t(needle_tokens.back().size()));
  }
  const int64_t needle_total = std::accumulate(len.begin(), len.end(), int64_t(0));
  const int64_t offset = int64_t(draw(spec.seed, "needle.offset", 0) % haystack.size());

  std::vector<NeedleSample> out;
  for (int r = 0; r < spec.queries; ++r) {
    const std::vector<int32_t> question = tok.encode(question_sentence(needles[size_t(r)].city));
    const int64_t q = int64_t(question.size()), room = spec.length - q;
    if (room < needle_total)
      fail("needle retrieval: context length ", spec.length, " cannot hold ", N, " needles (", needle_total,
           " tokens) and the question (", q, " tokens)");
    std::vector<int64_t> want(static_cast<size_t>(N));
    for (int i = 0; i < N; ++i)
      want[size_t(i)] = std::llround(spec.depths[size_t(i)] * double(room - len[size_t(i)]));
    const std::vector<int64_t> start = place_needles(want, len, room);

    NeedleSample s;
    s.needles = needles;
    s.query = r;
    s.answer = needles[size_t(r)].number;
    s.question_start = room;
    s.tokens.resize(size_t(room));
    std::vector<char> taken(static_cast<size_t>(room), 0);
    for (int i = 0; i < N; ++i) {
      s.needles[size_t(i)].start = start[size_t(i)];
      s.needles[size_t(i)].end = start[size_t(i)] + len[size_t(i)];
      for (int64_t j = 0; j < len[size_t(i)]; ++j) {
        s.tokens[size_t(start[size_t(i)] + j)] = needle_tokens[size_t(i)][size_t(j)];
        taken[size_t(start[size_t(i)] + j)] = 1;
      }
    }
    int64_t h = offset;  // haystack tokens fill the remaining positions in order
    for (int64_t p = 0; p < room; ++p)
      if (!taken[size_t(p)]) s.tokens[size_t(p)] = haystack[size_t(h++ % int64_t(haystack.size()))];
    s.tokens.insert(s.tokens.end(), question.begin(), question.end());
    out.push_back(std::move(s));
  }
  return out;
}

std::string first_digit_run(std::string_view text) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto b = std::find_if(text.begin(), text.end(), is_digit);
  const auto e = std::find_if_not(b, text.end(), is_digit);
  return std::string(b, e);
}

bool needle_answer_matches(std::string_view decoded, std::string_view expected) {
  return !expected.empty() && first_digit_run(decoded) == expected;
}

}  // namespace dt
