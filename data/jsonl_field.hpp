// A minimal JSON reader for one line of a JSON-lines file: finds one string
// field of the top-level object and decodes it (all escapes, \uXXXX with
// surrogate pairs) to UTF-8. Other fields are skipped after checking their syntax.
#pragma once
#include <string>
#include <string_view>

namespace dt {

// On success stores the decoded value of field `key` in out and returns true.
// On failure returns false and sets why to a short phrase ("invalid JSON at
// column 7: expected ':'", "no field \"text\"", "field \"text\" is a number,
// expected a string"); the caller adds file:line.
// A lone surrogate decodes to U+FFFD, as most JSON producers' consumers do.
bool jsonl_string_field(std::string_view line, std::string_view key, std::string& out, std::string& why);

}  // namespace dt
