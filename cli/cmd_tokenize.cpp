// difftron tokenize: stdin text -> token ids, or (--decode) ids -> bytes. For
// checking a tokenizer by hand and from scripts.
#include <cctype>
#include <climits>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/tiktoken.hpp"
#include "data/tokenizer.hpp"
#include "cli/commands.hpp"

namespace dt {
namespace {

const char* kUsage =
    "usage: difftron tokenize --tokenizer FILE|byte [--decode] [--allow-special]\n"
    "\n"
    "Encodes stdin (bytes) and prints the token ids, separated by spaces, on one line.\n"
    "\n"
    "  --tokenizer SPEC   byte, or a tiktoken rank file (data/tokenizers/cl100k_base.tiktoken,\n"
    "                     data/tokenizers/r50k_base.tiktoken; launch/fetch_tokenizers.sh gets them)\n"
    "  --decode           read whitespace-separated ids from stdin and write their bytes\n"
    "                     (EOS writes nothing)\n"
    "  --allow-special    encode special-token text (<|endoftext|>, ...) as its special id;\n"
    "                     by default it is ordinary text\n"
    "  --help             print this help\n";

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (true) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::string word = text.substr(start, i - start);
    size_t used = 0;
    long long v = -1;
    try { v = std::stoll(word, &used); } catch (const std::exception&) { used = 0; }
    if (used != word.size() || v < 0 || v > INT32_MAX)
      fail("--decode: '", word, "' (word ", ids.size() + 1, " of stdin) is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  std::string spec;
  bool decode = false, allow_special = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--decode") {
      decode = true;
    } else if (arg == "--allow-special") {
      allow_special = true;
    } else if (arg == "--tokenizer" || arg.starts_with("--tokenizer=")) {
      if (arg != "--tokenizer") {
        spec = arg.substr(arg.find('=') + 1);
      } else if (i + 1 < argc) {
        spec = argv[++i];
      } else {
        std::fputs("difftron tokenize: option --tokenizer needs a value\n", stderr);
        return 2;
      }
    } else {
      std::fprintf(stderr, "difftron tokenize: unknown argument '%s' (see difftron tokenize --help)\n", arg.c_str());
      return 2;
    }
  }
  if (spec.empty()) {
    std::fputs("difftron tokenize: missing --tokenizer FILE|byte (see difftron tokenize --help)\n", stderr);
    return 2;
  }
  if (decode && allow_special) {
    std::fputs("difftron tokenize: --allow-special applies to encoding, not --decode\n", stderr);
    return 2;
  }
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(spec);
  const std::string input = read_stdin();
  if (decode) {
    const std::string bytes = tok->decode(parse_ids(input));
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  // The byte tokenizer has no special-token text, so --allow-special changes nothing there.
  const auto* tiktoken = dynamic_cast<const TiktokenTokenizer*>(tok.get());
  const std::vector<int32_t> ids =
      allow_special && tiktoken ? tiktoken->encode_with_special(input) : tok->encode(input);
  std::string line;
  line.reserve(ids.size() * 6 + 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace dt
