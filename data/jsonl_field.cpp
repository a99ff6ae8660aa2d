#include "data/jsonl_field.hpp"

#include <simdjson.h>

#include "core/json.hpp"

namespace dt {
namespace {

const char* kind_of(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::STRING: return "a string";
    case T::OBJECT: return "an object";
    case T::ARRAY: return "an array";
    case T::BOOL: return "a boolean";
    case T::NULL_VALUE: return "null";
    default: return "a number";
  }
}

bool field_error(const char* kind, std::string_view key, std::string& why) {
  if (!kind) why = "no field \"" + std::string(key) + "\"";
  else why = "field \"" + std::string(key) + "\" is " + kind + ", expected a string";
  return false;
}

// The line with every lone surrogate escape (\uD800-\uDFFF not in a high-low
// pair) rewritten as \uFFFD: same length, so error columns still match.
// Backslashes occur only inside strings in valid JSON, so pairing them up
// from the start finds every escape.
std::string repair_lone_surrogates(std::string_view s) {
  std::string r(s);
  auto hex4 = [&](size_t at, unsigned& v) {
    if (at + 4 > r.size()) return false;
    v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      const char c = r[k];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + unsigned(d);
    }
    return true;
  };
  for (size_t i = 0; i + 1 < r.size(); ++i) {
    if (r[i] != '\\') continue;
    unsigned cp = 0, lo = 0;
    if (r[i + 1] != 'u' || !hex4(i + 2, cp)) {
      ++i;  // a two-character escape (or a bad one, which the parser reports)
      continue;
    }
    const bool pair = cp >= 0xD800 && cp < 0xDC00 && r.compare(i + 6, 2, "\\u") == 0 && hex4(i + 8, lo) &&
                      lo >= 0xDC00 && lo < 0xE000;
    if (pair) {
      i += 11;
    } else {
      if (cp >= 0xD800 && cp < 0xE000) r.replace(i + 2, 4, "fffd");
      i += 5;
    }
  }
  return r;
}

// The slow path, for lines simdjson refuses: lone surrogates (repaired
// here), integers beyond 64 bits, and errors, which nlohmann locates.
bool slow_field(std::string_view line, std::string_view key, std::string& out, std::string& why) {
  Json j;
  try {
    j = Json::parse(repair_lone_surrogates(line));
  } catch (const nlohmann::json::parse_error& e) {
    why = json_parse_error_text(e);
    return false;
  }
  if (!j.is_object()) return why = std::string("expected a JSON object, got ") + json_kind(j), false;
  const char* kind = nullptr;  // of the last field named key, as simdjson's path takes it
  const Json* value = nullptr;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() == key) kind = json_kind(it.value()), value = &it.value();
  if (!value || !value->is_string()) return field_error(kind, key, why);
  out = value->get_ref<const std::string&>();
  return true;
}

}  // namespace

bool jsonl_string_field(std::string_view line, std::string_view key, std::string& out, std::string& why) {
  thread_local simdjson::dom::parser parser;  // keeps its buffers from line to line
  simdjson::dom::element doc;
  // true: copy the line into the parser's padded buffer (simdjson reads past the end).
  if (parser.parse(line.data(), line.size(), true).get(doc) != simdjson::SUCCESS)
    return slow_field(line, key, out, why);
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS)
    return why = std::string("expected a JSON object, got ") + kind_of(doc.type()), false;
  const char* kind = nullptr;
  std::string_view text;
  for (const simdjson::dom::key_value_pair field : obj) {
    if (field.key != key) continue;
    kind = kind_of(field.value.type());
    if (field.value.get_string().get(text) != simdjson::SUCCESS) text = {};
  }
  if (!kind || kind != std::string_view("a string")) return field_error(kind, key, why);
  out.assign(text);
  return true;
}

}  // namespace dt
