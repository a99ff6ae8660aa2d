#include "data/jsonl_field.hpp"

#include <cstdint>

namespace dt {
namespace {

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Recursive descent over one line; the first error sticks in err.
class LineParser {
 public:
  LineParser(std::string_view s, std::string_view key, std::string& out) : s_(s), key_(key), out_(out) {}

  // Parses the whole line as one object; the last value of field key lands in out.
  bool parse() {
    skip_ws();
    if (peek() != '{') return error("expected '{'");
    return container(0) && at_end();
  }
  const std::string& err() const { return err_; }
  // What field key held: "" when absent, else "a string", "a number", ...
  const std::string& kind() const { return kind_; }

 private:
  static constexpr int kMaxDepth = 256;  // deeper nesting is refused, not a stack overflow

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool error(const std::string& what) {
    if (err_.empty()) err_ = "invalid JSON at column " + std::to_string(i_ + 1) + ": " + what;
    return false;
  }
  bool expect(char c) {
    skip_ws();
    if (peek() == c) return ++i_, true;
    return error(std::string("expected '") + c + "'");
  }
  bool at_end() {
    skip_ws();
    return i_ == s_.size() || error("unexpected text after the object");
  }

  const char* value_kind() const {
    switch (peek()) {
      case '"': return "a string";
      case '{': return "an object";
      case '[': return "an array";
      case 't': case 'f': return "a boolean";
      case 'n': return "null";
      default: return "a number";
    }
  }

  // Any JSON value; its syntax is checked and its content dropped.
  bool value(int depth) {
    skip_ws();
    char c = peek();
    if (c == '"') return string(nullptr);
    if (c == '{' || c == '[') return container(depth);
    if (c == 't') return literal("true");
    if (c == 'f') return literal("false");
    if (c == 'n') return literal("null");
    return number();
  }

  // An object or array at its opening bracket. In the top-level object
  // (depth 0) a string value of field key_ is decoded into out_.
  bool container(int depth) {
    if (depth > kMaxDepth) return error("nesting deeper than 256 levels");
    const char open = peek(), close = open == '{' ? '}' : ']';
    ++i_;
    skip_ws();
    if (peek() == close) return ++i_, true;
    std::string name;
    while (true) {
      bool capture = false;
      if (open == '{') {
        skip_ws();
        if (peek() != '"') return error("expected a field name in quotes");
        name.clear();
        if (!string(depth == 0 ? &name : nullptr) || !expect(':')) return false;
        skip_ws();
        capture = depth == 0 && name == key_;
        if (capture) kind_ = value_kind();
      }
      if (capture && kind_ == "a string") {
        out_.clear();
        if (!string(&out_)) return false;
      } else if (!value(depth + 1)) {
        return false;
      }
      skip_ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == close) return ++i_, true;
      return error(std::string("expected ',' or '") + close + "'");
    }
  }

  bool literal(const char* word) {
    std::string_view w(word);
    if (s_.substr(i_, w.size()) != w) return error("expected a value");
    i_ += w.size();
    return true;
  }

  bool number() {
    size_t start = i_;
    bool digit = false;
    if (peek() == '-') ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c >= '0' && c <= '9') digit = true;
      else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') break;
      ++i_;
    }
    if (!digit) return i_ = start, error("expected a value");
    return true;
  }

  bool hex4(uint32_t& v) {
    if (i_ + 4 > s_.size()) return error("truncated \\u escape");
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return --i_, error("bad hex digit in \\u escape");
    }
    return true;
  }

  // A string starting at the opening quote; decoded into out unless out is null.
  bool string(std::string* out) {
    ++i_;  // opening quote
    while (true) {
      if (i_ >= s_.size()) return error("unterminated string");
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return --i_, error("control character in string");
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return error("unterminated string");
      char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': break;
        default: return --i_, error(std::string("unknown escape '\\") + e + "'");
      }
      if (plain) {
        if (out) out->push_back(plain);
        continue;
      }
      uint32_t cp = 0;
      if (!hex4(cp)) return false;
      if (cp >= 0xD800 && cp < 0xDC00) {
        // A high surrogate pairs with an immediately following \u low surrogate.
        uint32_t lo = 0;
        if (s_.substr(i_, 2) == "\\u") {
          size_t save = i_;
          i_ += 2;
          if (!hex4(lo)) return false;
          if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          else i_ = save, cp = 0xFFFD;
        } else {
          cp = 0xFFFD;
        }
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        cp = 0xFFFD;
      }
      if (out) append_utf8(cp, *out);
    }
  }

  std::string_view s_, key_;
  std::string& out_;
  size_t i_ = 0;
  std::string err_, kind_;
};

}  // namespace

bool jsonl_string_field(std::string_view line, std::string_view key, std::string& out, std::string& why) {
  LineParser p(line, key, out);
  if (!p.parse()) {
    why = p.err();
    return false;
  }
  const std::string& kind = p.kind();
  if (kind.empty()) {
    why = "no field \"" + std::string(key) + "\"";
    return false;
  }
  if (kind != "a string") {
    why = "field \"" + std::string(key) + "\" is " + kind + ", expected a string";
    return false;
  }
  return true;
}

}  // namespace dt
