// Config -> YAML that load_config_text reads back to an equal Config.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string>
#include <type_traits>

#include "core/config.hpp"
#include "core/config_schema.hpp"

namespace dt {
namespace {

using namespace config_schema;

std::string format_double(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  std::string s(buf, p);
  // "1e-05" -> "1.0e-05", "3" -> "3.0": read as floats by every YAML parser.
  if (s.find('.') == std::string::npos) {
    size_t e = s.find('e');
    s.insert(e == std::string::npos ? s.size() : e, ".0");
  }
  return s;
}

// A double-quoted YAML scalar, escaped by yaml-cpp: reads back as the same string.
std::string quote(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

class Writer {
 public:
  std::ostringstream os;
  void section(const char* name) { os << (os.tellp() > 0 ? "\n" : "") << name << ":\n"; }
  template <class T>
  void field(const char* key, const T& v, Presence p = kOptional) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
      if (p == kUnsetWhenZero && v == 0) return;
    os << "  " << key << ": " << text(v) << "\n";
  }
  template <class E, size_t N>
  void choice(const char* key, const E& v, const Choice<E> (&names)[N]) {
    os << "  " << key << ": " << choice_name(names, v) << "\n";
  }
  void datasets(const char* key, const std::vector<DatasetSpec>& list) {
    os << "  " << key << ":" << (list.empty() ? " []" : "") << "\n";
    for (const auto& d : list)
      os << "    - {path: " << quote(d.path) << ", weight: " << format_double(d.weight) << "}\n";
  }

 private:
  static std::string text(bool v) { return v ? "true" : "false"; }
  static std::string text(double v) { return format_double(v); }
  static std::string text(const std::string& v) { return quote(v); }
  template <class T>
  static std::string text(T v) { return std::to_string(v); }
};

}  // namespace

std::string config_to_yaml(const Config& c) {
  Writer w;
  visit_config(c, w);
  return w.os.str();
}

std::string model_config_difference(const ModelConfig& stored, const ModelConfig& now) {
  // The model section as the writer prints it ("  key: value" lines, in schema
  // order), so every key the schema lists is compared, formatted as in a config.
  auto model_lines = [](const ModelConfig& m) {
    Config c;
    c.model = m;
    const std::string yaml = config_to_yaml(c);
    std::vector<std::pair<std::string, std::string>> kv;
    std::istringstream in(yaml.substr(0, yaml.find("\ntrain:")));
    for (std::string line; std::getline(in, line);) {
      const size_t colon = line.find(": ");
      if (line.rfind("  ", 0) != 0 || colon == std::string::npos) continue;
      kv.emplace_back(line.substr(2, colon - 2), line.substr(colon + 2));
    }
    return kv;
  };
  const auto& may_change = config_schema::kModelKeysAStageMayChange;
  const auto a = model_lines(stored), b = model_lines(now);
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const std::string& key = a[i].first;
    if (std::find(may_change.begin(), may_change.end(), key) != may_change.end()) continue;
    if (a[i].second != b[i].second)
      return "model." + key + ": " + a[i].second + " in the checkpoint, " + b[i].second + " in the config";
  }
  return "";
}

}  // namespace dt
