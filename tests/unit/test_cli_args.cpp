// The shared command-line parser (cli/cli_args.hpp): options in any order,
// repeatable ones kept in order, a repeated single one keeps its last value,
// and every mistake is one UsageError line naming the option or argument and
// what was expected.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli_args.hpp"

namespace dt {
namespace {

struct Parsed {
  std::string ckpt, out;
  std::vector<std::string> data;
  int seq_len = 0;
  bool force = false;
};

// Parses `args` (after the subcommand name) into a Parsed; returns the
// UsageError's message, "" when it parsed, or "help".
std::string parse(std::vector<std::string> args, Parsed& p) {
  args.insert(args.begin(), "cmd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  CommandLine cl("cmd", "usage: difftron cmd CKPT [options]\n", "Does a thing.\n");
  cl.positional("CKPT", p.ckpt, "a checkpoint");
  cl.texts("--data", p.data, "PATH", "shards (repeatable)");
  cl.text("--out", p.out, "DIR", "output directory");
  cl.integer("--seq-len", p.seq_len, 1, 64, "T", "tokens per window");
  cl.flag("--force", p.force, "replace");
  try {
    testing::internal::CaptureStdout();
    const bool go = cl.parse(int(argv.size()), argv.data());
    const std::string printed = testing::internal::GetCapturedStdout();
    if (!go) return printed.find("usage: difftron cmd CKPT") == 0 ? "help" : "help without usage: " + printed;
    return "";
  } catch (const UsageError& e) {
    testing::internal::GetCapturedStdout();
    return e.what();
  }
}

TEST(CliArgs, OptionsInAnyOrderRepeatableOnesInOrderLastSingleOneWins) {
  Parsed p;
  EXPECT_EQ(parse({"--data", "a", "ck", "--out", "x", "--data=b", "--seq-len", "8", "--out", "y", "--force"}, p), "");
  EXPECT_EQ(p.ckpt, "ck");
  EXPECT_EQ(p.data, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.out, "y");
  EXPECT_EQ(p.seq_len, 8);
  EXPECT_TRUE(p.force);
}

TEST(CliArgs, HelpPrintsOurUsageAndEveryOptionWithItsDescription) {
  Parsed p;
  EXPECT_EQ(parse({"--help"}, p), "help");
  EXPECT_EQ(parse({"-h"}, p), "help");
  CommandLine cl("cmd", "usage: difftron cmd CKPT [options]\n", "Does a thing.\n");
  cl.texts("--data", p.data, "PATH", "shards (repeatable)");
  cl.integer("--seq-len", p.seq_len, 1, 64, "T", "tokens per window");
  const std::string help = cl.help();
  EXPECT_NE(help.find("  --data PATH"), std::string::npos) << help;
  EXPECT_NE(help.find("shards (repeatable)"), std::string::npos) << help;
  EXPECT_NE(help.find("  --seq-len T"), std::string::npos) << help;
  EXPECT_NE(help.find("  --help"), std::string::npos) << help;
}

TEST(CliArgs, EachMistakeIsOneLineNamingTheOptionAndWhatWasExpected) {
  Parsed p;
  EXPECT_EQ(parse({"ck", "--seq-len", "65"}, p), "--seq-len 65: expected an integer in [1, 64]");
  EXPECT_EQ(parse({"ck", "--seq-len", "4294967297"}, p), "--seq-len 4294967297: expected an integer in [1, 64]");
  EXPECT_EQ(parse({"ck", "--seq-len", "8k"}, p), "--seq-len 8k: expected an integer in [1, 64]");
  EXPECT_EQ(parse({"ck", "--out"}, p), "--out needs a value: --out DIR (see difftron cmd --help)");
  EXPECT_EQ(parse({"ck", "--bogus"}, p), "unexpected argument '--bogus' (no such option; see difftron cmd --help)");
  EXPECT_EQ(parse({"ck", "other"}, p), "unexpected argument 'other' (expected CKPT; see difftron cmd --help)");
}

}  // namespace
}  // namespace dt
