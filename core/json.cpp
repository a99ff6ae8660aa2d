#include "core/json.hpp"

#include "core/error.hpp"

namespace dt {

std::string json_parse_error_text(const nlohmann::json::parse_error& e) {
  // e.what(): "[json.exception.parse_error.101] parse error at line 1, column 13:
  // syntax error while parsing object - unexpected end of input; expected '}'"
  std::string what = e.what();
  const size_t colon = what.find(": ");
  if (colon != std::string::npos) what.erase(0, colon + 2);
  const size_t dash = what.find(" - ");
  if (what.starts_with("syntax error") && dash != std::string::npos) what.erase(0, dash + 3);
  // Two cases said the way a user looks for them.
  if (what.find("expected end of input") != std::string::npos) what = "unexpected text after the object";  // every file difftron reads holds one object
  else if (what.find("forbidden character after backslash") != std::string::npos)
    what = "unknown escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)";
  for (char& c : what)
    if (c == '\n' || c == '\r') c = ' ';  // "last read: '...'" may quote a line break
  return "invalid JSON at column " + std::to_string(e.byte) + ": " + what;
}

Json parse_json(std::string_view text, const std::string& where) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(where, ": ", json_parse_error_text(e));
  }
}

const char* json_kind(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string: return "a string";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::null: return "null";
    default: return "a number";
  }
}

std::string json_text_of(const Json& v, int indent) {
  return v.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string json_line(const Json& flat) {
  std::string s = "{";
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    if (it != flat.begin()) s += ", ";
    s += json_text_of(Json(it.key())) + ": " + json_text_of(it.value());
  }
  return s + "}";
}

}  // namespace dt
