// YAML -> Config with strict validation and --set overrides. One list of keys
// (visit_config, core/config_schema.hpp) drives reading, writing and the
// unknown-key check, so a field added to config.hpp is added there once. Every error is one
// line: "<source>: <key.path>: <what was expected>".
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/config.hpp"
#include "core/config_schema.hpp"

namespace dt {
namespace {

using namespace config_schema;


using Schema = std::vector<std::pair<std::string, std::vector<std::string>>>;

struct KeyCollector {
  Schema sections;
  void section(const char* s) { sections.push_back({s, {}}); }
  template <class T>
  void field(const char* k, const T&, Presence = kOptional) { sections.back().second.push_back(k); }
  template <class E, size_t N>
  void choice(const char* k, const E&, const Choice<E> (&)[N]) { sections.back().second.push_back(k); }
  void datasets(const char* k, const std::vector<DatasetSpec>&) { sections.back().second.push_back(k); }
};

const Schema& schema() {
  static const Schema s = [] {
    Config c;
    KeyCollector k;
    visit_config(c, k);
    return k.sections;
  }();
  return s;
}
const std::vector<std::string>* section_keys(const std::string& name) {
  for (const auto& [s, keys] : schema())
    if (s == name) return &keys;
  return nullptr;
}
std::vector<std::string> section_names() {
  std::vector<std::string> out;
  for (const auto& [s, keys] : schema()) out.push_back(s);
  return out;
}

// join({a, b, c}, ", ") = "a, b, c"; with last = " or ": "a, b or c".
std::string join(const std::vector<std::string>& v, const char* sep, const char* last = nullptr) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : i + 1 == v.size() && last ? last : sep) + v[i];
  return out;
}

// Levenshtein distance, for "did you mean" on a misspelt key.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// "unknown key (did you mean 'n_heads'?); expected one of: ..."
std::string unknown_key_message(const char* what, const std::string& key,
                                const std::vector<std::string>& allowed) {
  std::string best;
  size_t best_d = 3;  // suggest only within two edits
  for (const auto& k : allowed) {
    size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  std::string msg = what;
  if (!best.empty()) msg += " (did you mean '" + best + "'?)";
  return msg + "; expected one of: " + join(allowed, ", ");
}

// Keeps a message on one line whatever the user's values contain.
std::string one_line(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\r') out += "\\r";
    else out += ch;
  }
  return out;
}

// How a node looks, for "got ..." in messages.
std::string describe(const YAML::Node& n) {
  if (n.IsNull()) return "nothing (null)";
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  std::string s = n.Scalar();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  if (n.Tag() == "!") return "the quoted string \"" + s + "\"";
  return "'" + s + "'";
}

struct Ctx {
  std::string source;
  template <class... Args>
  [[noreturn]] void bad(const std::string& path, const Args&... args) const {
    std::ostringstream os;
    (os << ... << args);
    fail(one_line(source + ": " + path + ": " + os.str()));
  }
};

template <class T>
bool parse_number(const std::string& s, T& out) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e;
}

// Plain (unquoted, untagged) scalars only: `"16"` where a number is expected is an error.
template <class T>
T read_scalar(const Ctx& ctx, const YAML::Node& n, const std::string& path) {
  const bool plain = n.IsScalar() && n.Tag() == "?";
  if constexpr (std::is_same_v<T, std::string>) {
    if (!n.IsScalar()) ctx.bad(path, "expected a string, got ", describe(n));
    return n.Scalar();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (plain && n.Scalar() == "true") return true;
    if (plain && n.Scalar() == "false") return false;
    ctx.bad(path, "expected true or false, got ", describe(n));
  } else if constexpr (std::is_floating_point_v<T>) {
    T v{};
    if (!plain || !parse_number(n.Scalar(), v)) ctx.bad(path, "expected a number, got ", describe(n));
    if (!std::isfinite(v)) ctx.bad(path, "expected a finite number, got ", describe(n));
    return v;
  } else {
    T v{};
    if (plain && parse_number(n.Scalar(), v)) return v;
    double d = 0;
    const bool numeric = plain && parse_number(n.Scalar(), d);
    if (numeric && n.Scalar().find_first_of(".eE") != std::string::npos)
      ctx.bad(path, "expected an integer (digits only, no decimal point or exponent), got ", describe(n));
    if (numeric && std::is_unsigned_v<T> && d < 0)
      ctx.bad(path, "expected a non-negative integer, got ", describe(n));
    if (numeric)
      ctx.bad(path, "expected an integer in [", std::numeric_limits<T>::min(), ", ",
              std::numeric_limits<T>::max(), "], got ", describe(n));
    ctx.bad(path, "expected an integer, got ", describe(n));
  }
}

// An old key name (kRenamedKeys) gets the new one instead of "unknown key".
void check_not_renamed(const Ctx& ctx, const std::string& section, const std::string& key) {
  for (const Renamed& r : kRenamedKeys)
    if (section == r.section && key == r.old_key)
      ctx.bad(section + "." + key, "renamed; expected ", r.section, ".", r.new_key, " (", r.meaning, ")");
}

// A saved config of an earlier version: its old key names become the new ones.
void rename_old_keys(YAML::Node& root) {
  for (const Renamed& r : kRenamedKeys) {
    YAML::Node sec = root[r.section];
    if (!sec.IsMap() || !sec[r.old_key] || sec[r.new_key]) continue;
    sec[r.new_key] = sec[r.old_key];
    sec.remove(r.old_key);
  }
}

// Checks a mapping's keys: all known, none repeated.
void check_keys(const Ctx& ctx, const YAML::Node& map, const std::string& prefix,
                const std::vector<std::string>& allowed, const char* what = "unknown key") {
  std::map<std::string, int> seen;  // key -> 1-based line
  for (const auto& kv : map) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "<" + describe(kv.first) + ">";
    std::string path = prefix + key;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      if (!prefix.empty()) check_not_renamed(ctx, prefix.substr(0, prefix.size() - 1), key);
      ctx.bad(path, unknown_key_message(what, key, allowed));
    }
    int line = kv.first.Mark().line + 1;
    if (seen.count(key)) ctx.bad(path, "duplicate key (lines ", seen[key], " and ", line, ")");
    seen[key] = line;
  }
}

class Reader {
 public:
  Reader(const Ctx& ctx, const YAML::Node& root) : ctx_(ctx), root_(root) {}

  void section(const char* name) {
    name_ = name;
    const YAML::Node& r = root_;
    sec_.emplace(r[name]);  // not reset(): a missing key gives an invalid node, which reset() rejects
    if (!sec_->IsDefined() || sec_->IsNull()) return;  // absent or empty section: all defaults
    if (!sec_->IsMap()) ctx_.bad(name_, "expected a mapping of keys, got ", describe(*sec_));
    check_keys(ctx_, *sec_, name_ + ".", *section_keys(name_));
  }
  template <class T>
  void field(const char* key, T& out, Presence presence = kOptional) {
    auto n = get(key);
    if (!n && presence == kRequired) ctx_.bad(path(key), "required key is missing");
    if (!n) return;
    out = read_scalar<T>(ctx_, *n, path(key));
    if constexpr (std::is_arithmetic_v<T>)
      if (presence == kUnsetWhenZero && out <= 0)
        ctx_.bad(path(key), "expected a positive integer, got ", out, " (leave the key out to not set it)");
  }
  template <class E, size_t N>
  void choice(const char* key, E& out, const Choice<E> (&names)[N]) {
    auto n = get(key);
    if (!n) return;
    std::vector<std::string> all;
    for (const auto& c : names) all.push_back(c.name);
    if (n->IsScalar())
      for (const auto& c : names)
        if (n->Scalar() == c.name) return void(out = c.value);
    ctx_.bad(path(key), "expected ", join(all, ", ", " or "), ", got ", describe(*n));
  }
  void datasets(const char* key, std::vector<DatasetSpec>& out) {
    auto n = get(key);
    if (!n) return;
    if (!n->IsSequence())
      ctx_.bad(path(key), "expected a list of {path, weight} (use [] for none), got ", describe(*n));
    out.clear();
    for (size_t i = 0; i < n->size(); ++i) {
      const YAML::Node& item = (*n)[i];
      std::string p = path(key) + "[" + std::to_string(i) + "]";
      if (!item.IsMap()) ctx_.bad(p, "expected a mapping {path: ..., weight: ...}, got ", describe(item));
      check_keys(ctx_, item, p + ".", kDatasetKeys);
      DatasetSpec d;
      if (!item["path"]) ctx_.bad(p + ".path", "required key is missing (a shard directory, file or glob)");
      d.path = read_scalar<std::string>(ctx_, item["path"], p + ".path");
      if (item["weight"]) d.weight = read_scalar<double>(ctx_, item["weight"], p + ".weight");
      out.push_back(d);
    }
  }

 private:
  std::string path(const char* key) const { return name_ + "." + key; }
  std::optional<YAML::Node> get(const char* key) {
    if (!sec_->IsDefined() || !sec_->IsMap()) return std::nullopt;
    const YAML::Node& s = *sec_;
    YAML::Node n = s[key];
    if (!n.IsDefined()) return std::nullopt;
    return n;
  }
  const Ctx& ctx_;
  YAML::Node root_;
  std::optional<YAML::Node> sec_;
  std::string name_;
};

// "a.b=value" or "data.datasets[0].path=value": writes the parsed YAML value into
// the tree; a null value removes the key. Keys are checked against the schema,
// so a key the file did not set can still be set, and a misspelt one fails.
void apply_override(const Ctx& ctx, YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail(one_line(ctx.source + ": --set '" + assignment + "': expected key.path=value (e.g. train.lr=1e-3)"));
  const std::string key = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value.reset(YAML::Load(assignment.substr(eq + 1)));
  } catch (const YAML::Exception& e) {
    ctx.bad(key, "the --set value is not valid YAML: ", e.msg);
  }
  std::vector<std::string> segs(1);  // "data.datasets[0].path" -> data, datasets, 0, path
  for (char ch : key) {
    if (ch == '.' || ch == '[') segs.emplace_back();
    else if (ch != ']') segs.back() += ch;
  }
  const auto* keys = section_keys(segs[0]);
  if (!keys) ctx.bad(segs[0], unknown_key_message("unknown section", segs[0], section_names()));
  if (segs.size() < 2) ctx.bad(key, "--set needs section.key=value; keys: ", join(*keys, ", "));
  const std::string path = segs[0] + "." + segs[1];
  if (std::find(keys->begin(), keys->end(), segs[1]) == keys->end()) {
    check_not_renamed(ctx, segs[0], segs[1]);
    ctx.bad(path, unknown_key_message("unknown key", segs[1], *keys));
  }
  YAML::Node sec = root[segs[0]];  // non-const: creates the section when the file has none
  if (sec.IsDefined() && !sec.IsNull() && !sec.IsMap())
    ctx.bad(segs[0], "expected a mapping of keys, got ", describe(sec));
  if (segs.size() == 2) {
    if (!value.IsNull()) sec[segs[1]] = value;
    else if (sec.IsMap()) sec.remove(segs[1]);
    return;
  }
  if (path != "data.datasets" || segs.size() != 4)
    ctx.bad(key, "--set can reach into data.datasets[i].path or .weight only; set ", path, " as a whole");
  const std::string item_path = path + "[" + segs[2] + "]";
  YAML::Node list = sec["datasets"];
  size_t i = 0;
  const size_t n = list.IsSequence() ? list.size() : 0;
  if (!parse_number(segs[2], i) || i >= n)
    ctx.bad(item_path, "no such item (data.datasets has ", n, n == 1 ? " item" : " items", ")");
  if (std::find(kDatasetKeys.begin(), kDatasetKeys.end(), segs[3]) == kDatasetKeys.end())
    ctx.bad(item_path + "." + segs[3], unknown_key_message("unknown key", segs[3], kDatasetKeys));
  YAML::Node item = list[i];
  if (!item.IsMap()) ctx.bad(item_path, "expected a mapping {path: ..., weight: ...}, got ", describe(item));
  if (!value.IsNull()) item[segs[3]] = value;
  else item.remove(segs[3]);
}

Config load(const std::string& yaml, const std::vector<std::string>& overrides, const std::string& source,
            bool saved) {
  const Ctx ctx{source};
  YAML::Node root;
  try {
    // Every document, so that a second one after `---` is refused rather than ignored
    // (an empty one, e.g. after a trailing `---`, holds nothing to ignore).
    std::vector<YAML::Node> docs = YAML::LoadAll(yaml);
    std::erase_if(docs, [](const YAML::Node& d) { return d.IsNull(); });
    if (docs.size() > 1)
      fail(source, ": holds ", docs.size(), " YAML documents (separated by ---); expected one document with the "
           "sections ", join(section_names(), ", "));
    if (!docs.empty()) root.reset(docs[0]);
  } catch (const YAML::ParserException& e) {
    fail(one_line(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                  ": YAML syntax error: " + e.msg));
  }
  const std::string sections = join(section_names(), ", ");
  if (root.IsNull() && overrides.empty()) fail(source, ": the config is empty; expected the sections ", sections);
  if (root.IsNull()) root.reset(YAML::Node(YAML::NodeType::Map));
  if (!root.IsMap()) fail(one_line(source + ": expected a mapping of sections (" + sections + "), got " + describe(root)));
  check_keys(ctx, root, "", section_names(), "unknown section");
  if (saved) rename_old_keys(root);
  Config c;
  c.source = source;
  try {
    for (const auto& o : overrides) apply_override(ctx, root, o);
    Reader reader(ctx, root);
    visit_config(c, reader);
  } catch (const YAML::Exception& e) {  // a yaml-cpp surprise still gets one line and the file
    fail(one_line(source + ": " + e.what()));
  }
  try {
    validate_config(c);
  } catch (const Error& e) {
    throw Error(one_line(e.what()));  // values echoed in messages may hold newlines
  }
  return c;
}

std::string read_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory; expected a YAML config file");
  return read_whole_file(path, "config file");
}

}  // namespace

Config load_config_text(const std::string& yaml, const std::vector<std::string>& overrides,
                        const std::string& source) {
  return load(yaml, overrides, source, /*saved=*/false);
}

Config load_config_file(const std::string& path, const std::vector<std::string>& overrides) {
  return load(read_config_file(path), overrides, path, /*saved=*/false);
}

Config load_saved_config_text(const std::string& yaml, const std::string& source) {
  return load(yaml, {}, source, /*saved=*/true);
}

Config load_saved_config_file(const std::string& path) { return load(read_config_file(path), {}, path, /*saved=*/true); }

}  // namespace dt
