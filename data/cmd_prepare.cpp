// difftron prepare: text or JSON-lines files -> HDF5 token shards (DESIGN §5).
// Single-threaded: read a document, tokenize it, append it to the current shard.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/file_list.hpp"
#include "data/input_file.hpp"
#include "data/jsonl_field.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "tools/commands.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

const char* kUsage =
    "usage: difftron prepare --input PATH [--input PATH ...] --output DIR [options]\n"
    "\n"
    "Tokenizes documents into HDF5 shards DIR/shard_00000.h5, shard_00001.h5, ...\n"
    "\n"
    "  --input PATH        a file, a directory (recursed, files in name order) or a glob;\n"
    "                      repeatable; .gz files are decompressed\n"
    "  --output DIR        where the shards go (created if missing)\n"
    "  --tokenizer SPEC    tokenizer (default: byte)\n"
    "  --shard-tokens N    tokens per shard at most (default: 50000000); a document is\n"
    "                      never split, so one longer than N gets a shard of its own\n"
    "  --format F          text or jsonl (default: jsonl for *.jsonl and *.jsonl.gz, else text)\n"
    "  --text-field NAME   JSON-lines field holding the document (default: text)\n"
    "  --separator STR     split text files into documents at STR (\\n, \\t and \\\\ are\n"
    "                      understood); default: one document per file\n"
    "  --force             replace shard_*.h5 files already in DIR\n"
    "  --help              print this help\n";

struct Options {
  std::vector<std::string> inputs;
  std::string output, tokenizer = "byte", format, text_field = "text", separator;
  int64_t shard_tokens = 50'000'000;
  bool force = false;
};

// A usage mistake: the caller prints it and exits 2 (bad input data exits 1).
struct UsageError {
  std::string msg;
};

// --separator '\n\n' means two newlines: \n, \t and \\ are decoded, any other
// backslash is kept as typed.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (s[i] == '\\' && (next == 'n' || next == 't' || next == '\\')) {
      out.push_back(next == 'n' ? '\n' : next == 't' ? '\t' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Options parse(int argc, char** argv, bool& help) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;  // from --name=value
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw UsageError{"option " + arg + " needs a value"};
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      help = true;
      return o;
    } else if (arg == "--force") {
      o.force = true;
    } else if (arg == "--input") {
      o.inputs.push_back(value());
    } else if (arg == "--output") {
      o.output = value();
    } else if (arg == "--tokenizer") {
      o.tokenizer = value();
    } else if (arg == "--text-field") {
      o.text_field = value();
    } else if (arg == "--separator") {
      o.separator = unescape(value());
    } else if (arg == "--format") {
      o.format = value();
      if (o.format != "text" && o.format != "jsonl")
        throw UsageError{"--format " + o.format + " is not text or jsonl"};
    } else if (arg == "--shard-tokens") {
      const std::string v = value();
      size_t used = 0;
      try { o.shard_tokens = std::stoll(v, &used); } catch (const std::exception&) { used = 0; }
      if (used == 0 || used != v.size() || o.shard_tokens < 1)
        throw UsageError{"--shard-tokens " + v + " is not a positive integer"};
    } else if (!arg.starts_with("-")) {
      throw UsageError{"unexpected argument '" + arg + "' (inputs go after --input; see difftron prepare --help)"};
    } else {
      throw UsageError{"unknown option '" + arg + "' (see difftron prepare --help)"};
    }
  }
  if (o.inputs.empty()) throw UsageError{"missing --input PATH (see difftron prepare --help)"};
  if (o.output.empty()) throw UsageError{"missing --output DIR (see difftron prepare --help)"};
  return o;
}

bool is_jsonl(const std::string& path, const std::string& format) {
  if (!format.empty()) return format == "jsonl";
  return path.ends_with(".jsonl") || path.ends_with(".jsonl.gz");
}

std::vector<fs::path> existing_shards(const std::string& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind("shard_", 0) == 0 && (name.ends_with(".h5") || name.ends_with(".h5.tmp")))
      found.push_back(it->path());
  }
  return found;
}

// Documents -> shards of at most shard_tokens tokens, with progress lines.
class ShardSink {
 public:
  ShardSink(const Options& o, const Tokenizer& tok) : o_(o), tok_(tok), start_(clock::now()), last_(start_) {}

  void add(std::string_view text) {
    if (text.empty()) return;  // an empty document would be a lone EOS
    std::vector<int32_t> ids = tok_.encode(text);
    const int64_t len = static_cast<int64_t>(ids.size()) + 1;  // + EOS
    if (writer_ && writer_->num_tokens() > 0 && writer_->num_tokens() + len > o_.shard_tokens) finish_shard();
    if (!writer_) {
      char name[32];
      std::snprintf(name, sizeof(name), "shard_%05d.h5", shards_);
      writer_ = std::make_unique<ShardWriter>((fs::path(o_.output) / name).string(), tok_.name(),
                                              tok_.vocab_size(), tok_.eos_id());
    }
    writer_->add_document(ids);
    ++docs_;
    tokens_ += len;
    bytes_ += static_cast<int64_t>(text.size());
    if (clock::now() - last_ > std::chrono::seconds(2)) {
      last_ = clock::now();
      const double s = seconds();
      char line[160];
      std::snprintf(line, sizeof(line),
                    "prepare: %lld documents (%.0f/s), %.1f MB (%.1f MB/s), %lld tokens, shard %d",
                    static_cast<long long>(docs_), docs_ / s, bytes_ / 1e6, bytes_ / 1e6 / s,
                    static_cast<long long>(tokens_), shards_);
      log_info(line);
    }
  }

  void finish() {
    if (writer_) finish_shard();
    if (docs_ == 0) fail("no documents found in the inputs (every file was empty)");
    double s = seconds();
    std::printf("prepare: %lld documents, %lld tokens, %lld bytes, %d shards, %.2f s, %.2f MB/s -> %s\n",
                static_cast<long long>(docs_), static_cast<long long>(tokens_), static_cast<long long>(bytes_),
                shards_, s, bytes_ / 1e6 / s, o_.output.c_str());
  }

 private:
  using clock = std::chrono::steady_clock;
  double seconds() const {
    return std::max(1e-6, std::chrono::duration<double>(clock::now() - start_).count());
  }
  void finish_shard() {
    writer_->close();
    writer_.reset();
    ++shards_;
  }

  const Options& o_;
  const Tokenizer& tok_;
  std::unique_ptr<ShardWriter> writer_;
  int shards_ = 0;
  int64_t docs_ = 0, tokens_ = 0, bytes_ = 0;
  clock::time_point start_, last_;
};

void read_text(const std::string& path, const Options& o, ShardSink& sink) {
  InputFile in(path);
  std::string all = in.read_all();
  if (o.separator.empty()) return sink.add(all);
  std::string_view rest(all);
  while (true) {
    size_t at = rest.find(o.separator);
    sink.add(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + o.separator.size());
  }
}

void read_jsonl(const std::string& path, const Options& o, ShardSink& sink) {
  InputFile in(path);
  std::string line, text, why;
  while (in.read_line(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    if (!jsonl_string_field(line, o.text_field, text, why)) fail(path, ":", in.line_number(), ": ", why);
    sink.add(text);
  }
}

}  // namespace

int cmd_prepare(int argc, char** argv) {
  Options o;
  bool help = false;
  try {
    o = parse(argc, argv, help);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "difftron prepare: error: %s\n", e.msg.c_str());
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::unique_ptr<Tokenizer> tok = make_tokenizer(o.tokenizer);

  // Inputs, minus anything inside the output directory (old shards when DIR sits under an input).
  fs::path out_dir = fs::weakly_canonical(o.output);
  if (!out_dir.has_filename()) out_dir = out_dir.parent_path();  // "out/" -> "out"
  std::vector<std::string> files;
  for (const auto& spec : o.inputs)
    for (auto& f : list_files(spec, /*recurse=*/true)) {
      const fs::path parent = fs::weakly_canonical(f).parent_path();
      if (std::mismatch(out_dir.begin(), out_dir.end(), parent.begin(), parent.end()).first != out_dir.end())
        files.push_back(std::move(f));
    }
  if (files.empty()) fail("no input files outside the output directory ", o.output);

  std::error_code ec;
  fs::create_directories(o.output, ec);
  if (!fs::is_directory(o.output)) fail(o.output, ": cannot create output directory", ec ? ": " + ec.message() : "");
  std::vector<fs::path> old = existing_shards(o.output);
  if (!old.empty() && !o.force)
    fail(o.output, " already holds ", old.size(), " shard file(s) such as ", old.front().filename().string(),
         " (pass --force to replace them)");
  for (const auto& p : old)
    if (!fs::remove(p, ec)) fail(p.string(), ": cannot remove old shard: ", ec.message());

  log_info("prepare: ", files.size(), " input file(s), tokenizer ", tok->name(), ", up to ", o.shard_tokens,
           " tokens per shard -> ", o.output);
  ShardSink sink(o, *tok);
  for (const auto& f : files) {
    if (is_jsonl(f, o.format)) read_jsonl(f, o, sink);
    else read_text(f, o, sink);
  }
  sink.finish();
  return 0;
}

}  // namespace dt
