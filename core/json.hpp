// JSON through nlohmann-json, with difftron's conventions: keys keep the
// order they were written in, a parse error is one line naming the file and
// the column, and a flat record is one `{"key": value, ...}` line (the layout
// metrics.jsonl has always had, which launch/*.sh and tests match with sed).
// Non-finite numbers are written as null: JSON has no inf or NaN.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dt {

using Json = nlohmann::ordered_json;

// "invalid JSON at column N: <what>" for a parse error of nlohmann.
std::string json_parse_error_text(const nlohmann::json::parse_error& e);

// Parses text, or fails "<where>: invalid JSON at column N: <what>".
Json parse_json(std::string_view text, const std::string& where);

// What a value is, for messages: "a string", "a number", "an object",
// "an array", "a boolean", "null".
const char* json_kind(const Json& v);

// An object of scalars as one line without the newline: `{"a": 1, "b": null}`
// (", " and ": " separators; strings escaped and numbers written by nlohmann;
// bytes that are not UTF-8 become U+FFFD).
std::string json_line(const Json& flat_object);

// The text of v, indented by 2 (objects on several lines), invalid UTF-8
// replaced by U+FFFD instead of throwing.
std::string json_text_of(const Json& v, int indent = -1);

}  // namespace dt
