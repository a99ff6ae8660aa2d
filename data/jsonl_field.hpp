// One string field of one JSON-lines record (prepare's hot path): simdjson's
// DOM parser validates the whole line (~2.5x the old hand-written reader,
// ~9x nlohmann; bench figures in the commit) and the field is copied out as
// UTF-8. A line simdjson refuses goes through nlohmann-json, which also gives
// the error its column.
#pragma once
#include <string>
#include <string_view>

namespace dt {

// On success stores the decoded value of field `key` of the top-level object
// in out and returns true (the last one when the key repeats). On failure
// returns false and sets why to a short phrase ("invalid JSON at column 7:
// ...", "no field \"text\"", "field \"text\" is a number, expected a
// string"); the caller adds file:line. A lone surrogate escape decodes to
// U+FFFD, as most JSON producers' consumers do; bytes that are not UTF-8 make
// the line invalid (JSON text is UTF-8).
bool jsonl_string_field(std::string_view line, std::string_view key, std::string& out, std::string& why);

}  // namespace dt
