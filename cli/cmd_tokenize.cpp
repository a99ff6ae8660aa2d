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
#include "cli/cli_args.hpp"
#include "data/tokenizer.hpp"
#include "cli/commands.hpp"

namespace dt {
namespace {

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
  CommandLine cl("tokenize", "usage: difftron tokenize --tokenizer FILE|byte [--decode] [--allow-special]\n",
                 "Encodes stdin (bytes) and prints the token ids, separated by spaces, on one line.\n");
  cl.text("--tokenizer", spec, "SPEC",
          "byte, a Hugging Face tokenizer.json of a byte-level BPE model\n"
          "(GPT-2, Llama 3, Qwen 2 style; any *.json), or a tiktoken rank file\n"
          "(data/tokenizers/cl100k_base.tiktoken, data/tokenizers/r50k_base.tiktoken;\n"
          "launch/fetch_tokenizers.sh gets them)");
  cl.flag("--decode", decode,
          "read whitespace-separated ids from stdin and write their bytes\n"
          "(EOS writes nothing)");
  cl.flag("--allow-special", allow_special,
          "encode special-token text (<|endoftext|>, ...) as its special id;\n"
          "by default it is ordinary text (a tokenizer.json's non-special\n"
          "added tokens are always recognised)");
  if (!cl.parse(argc, argv)) return 0;
  if (spec.empty()) throw UsageError("missing --tokenizer FILE|byte (" + cl.see_help() + ")");
  if (decode && allow_special) throw UsageError("--allow-special applies to encoding, not --decode");
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(spec);
  const std::string input = read_stdin();
  if (decode) {
    const std::string bytes = tok->decode(parse_ids(input));
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  // The byte tokenizer has no special-token text, so --allow-special changes nothing there.
  const std::vector<int32_t> ids = allow_special ? tok->encode_with_special(input) : tok->encode(input);
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
