// The command line of every difftron subcommand, on CLI11 (libcli11-dev), with
// difftron's conventions kept in this one place:
// - --help prints the usage line, the description and every option with its
//   description on stdout, and the command exits 0;
// - a bad command line is one line on stderr, "difftron CMD: error: WHAT",
//   naming the option (or argument) and what was expected, exit code 2 — never
//   CLI11's usage dump;
// - integer and number values are read whole and range-checked, never wrapped
//   ("--top-k 4294967297" is out of range, not 1); a repeated single-value
//   option keeps its last value; a repeatable one keeps them all, in order.
#pragma once
#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.hpp"

namespace dt {

// A usage mistake on the command line: printed as one line, exit code 2 (bad
// input data, a dt::Error, exits 1).
struct UsageError : Error {
  using Error::Error;
};

// The whole of `text` as a T in [min, max] (finite for floating point), or a
// UsageError "OPT TEXT: expected EXPECTED".
template <typename T>
T parse_option(const std::string& opt, const std::string& text, T min, T max, const std::string& expected) {
  T v{};
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  bool ok = r.ec == std::errc() && r.ptr == text.data() + text.size() && v >= min && v <= max;
  if constexpr (std::is_floating_point_v<T>) ok = ok && std::isfinite(v);
  if (!ok) throw UsageError(opt + " " + text + ": expected " + expected);
  return v;
}

// Every integer option goes through here: "an integer in [min, max]".
template <typename T>
T parse_int_option(const std::string& opt, const std::string& text, T min, T max) {
  static_assert(std::is_integral_v<T>);
  return parse_option<T>(opt, text, min, max,
                         "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

// The one line an error that ends a command prints (cli/difftron_main.cpp):
// "difftron CMD: KIND: WHAT", with " on rank R" after KIND in a job of several ranks.
inline std::string error_line(const std::string& cmd, const std::string& kind, const std::string& what, int rank,
                              int world) {
  return "difftron " + cmd + ": " + kind + (world > 1 ? " on rank " + std::to_string(rank) : "") + ": " + what;
}

// --help in difftron's layout: our usage line(s) instead of CLI11's, then the
// description, then each group of options with its optional introduction.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string usage, description;
  std::map<std::string, std::string> intros;  // group name -> text printed under its heading

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
    std::string out = usage;
    if (!description.empty()) out += "\n" + description;
    out += make_positionals(app) + make_groups(app, CLI::AppFormatMode::Normal);
    while (out.size() > 1 && out.back() == '\n' && out[out.size() - 2] == '\n') out.pop_back();
    const std::string footer = app->get_footer();
    if (!footer.empty()) out += "\n" + footer;
    return out;
  }
  std::string make_group(std::string group, bool is_positional, std::vector<const CLI::Option*> opts) const override {
    std::string out = "\n" + group + ":\n";
    if (const auto it = intros.find(group); it != intros.end()) out += it->second;
    for (const CLI::Option* o : opts) out += make_option(o, is_positional);
    return out;
  }
  // Only the value's name ("--threads N"), none of CLI11's type or default notes.
  std::string make_option_opts(const CLI::Option* o) const override {
    return o->get_option_text().empty() ? "" : " " + o->get_option_text();
  }
};

class CommandLine {
 public:
  // command: "train"; usage: the "usage: difftron train ..." line(s), ending in
  // a newline; description: the paragraphs --help prints before the options.
  CommandLine(std::string command, std::string usage, std::string description)
      : command_(std::move(command)), app_(std::string(), "difftron " + command_),
        fmt_(std::make_shared<HelpFormatter>()) {
    fmt_->usage = std::move(usage);
    fmt_->description = std::move(description);
    fmt_->column_width(24);
    app_.formatter(fmt_);
    app_.set_help_flag("--help", "print this help");
    // -h works too, unlisted (the help line names --help only).
    app_.add_flag_callback("-h", [] { throw CLI::CallForHelp(); })->group("");
  }
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // The options that follow go under a heading of their own in --help, with
  // `intro` (lines ending in newlines) printed under it.
  void group(const std::string& name, const std::string& intro = "") {
    group_ = name;
    if (!intro.empty()) fmt_->intros[name] = intro;
  }
  // Text --help prints after the options.
  void footer(const std::string& text) { app_.footer(text); }

  // --name: sets out to true.
  CLI::Option* flag(const std::string& name, bool& out, const std::string& help) {
    return app_.add_flag(name, out, help)->group(group_);
  }
  // --name VALUE, read by `read` (which throws dt::Error for a bad value) at
  // each occurrence, in command-line order.
  CLI::Option* value(const std::string& name, const std::string& value_name, const std::string& help,
                     std::function<void(const std::string&)> read) {
    value_names_[name] = value_name;
    return app_.add_option_function<std::string>(name, std::move(read), help)
        ->option_text(value_name)
        ->trigger_on_parse()
        ->group(group_);
  }
  CLI::Option* text(const std::string& name, std::string& out, const std::string& value_name,
                    const std::string& help) {
    return value(name, value_name, help, [&out](const std::string& v) { out = v; });
  }
  // Repeatable: each occurrence adds one value.
  CLI::Option* texts(const std::string& name, std::vector<std::string>& out, const std::string& value_name,
                     const std::string& help) {
    return value(name, value_name, help, [&out](const std::string& v) { out.push_back(v); });
  }
  template <typename T>
  CLI::Option* integer(const std::string& name, T& out, T min, T max, const std::string& value_name,
                       const std::string& help) {
    return value(name, value_name, help,
                 [&out, name, min, max](const std::string& v) { out = parse_int_option<T>(name, v, min, max); });
  }
  // A positional argument (CKPT, PATH, ...); the command checks it was given.
  CLI::Option* positional(const std::string& name, std::string& out, const std::string& help) {
    return app_.add_option(name, out, help)->option_text("");
  }

  // Parses argv[1..argc) (argv[0] is the subcommand). Returns false when
  // --help was asked for (printed on stdout; the command returns 0). A bad
  // command line throws UsageError with one line naming what is wrong.
  bool parse(int argc, char** argv) {
    try {
      app_.parse(argc, argv);
      return true;
    } catch (const CLI::CallForHelp&) {
      std::fputs(help().c_str(), stdout);
      return false;
    } catch (const CLI::ExtrasError&) {
      const std::vector<std::string> extra = app_.remaining();
      const std::string first = extra.empty() ? "?" : extra.front();
      throw UsageError("unexpected argument '" + first + "' (" +
                       (first.rfind("-", 0) == 0 ? "no such option" : "expected " + positionals()) + "; " +
                       see_help() + ")");
    } catch (const CLI::ArgumentMismatch& e) {
      // "--out: 1 required TEXT missing": the option got no value.
      const std::string what = e.what(), name = what.substr(0, what.find(':'));
      const auto it = value_names_.find(name);
      if (it == value_names_.end()) throw UsageError(what + " (" + see_help() + ")");
      throw UsageError(name + " needs a value: " + name + " " + it->second + " (" + see_help() + ")");
    } catch (const CLI::ParseError& e) {
      throw UsageError(std::string(e.what()) + " (" + see_help() + ")");
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {  // a value's reader refused it: a usage mistake too
      throw UsageError(e.what());
    }
  }

  std::string help() const { return app_.help(); }
  std::string see_help() const { return "see difftron " + command_ + " --help"; }

 private:
  // "CKPT" or "PATH and OUT", for a stray argument's message.
  std::string positionals() const {
    std::string s;
    const auto pos = app_.get_options([](const CLI::Option* o) { return o->get_positional(); });
    for (size_t i = 0; i < pos.size(); ++i)
      s += (i == 0 ? "" : i + 1 == pos.size() ? " and " : ", ") + pos[i]->get_name(true, false);
    return s.empty() ? "options only" : s;
  }

  std::string command_;
  CLI::App app_;
  std::shared_ptr<HelpFormatter> fmt_;
  std::string group_ = "Options";
  std::map<std::string, std::string> value_names_;  // option -> its value's name, for "needs a value"
};

}  // namespace dt
