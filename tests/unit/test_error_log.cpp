// The two kinds of failure and where lines go: a failed DT_CHECK is a bug and
// says so, distinct from bad input; progress goes to stdout, warnings to stderr.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "core/log.hpp"
#include "cli/cli_args.hpp"

namespace dt {
namespace {

std::string what_of(void (*f)()) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "nothing was thrown";
  return "";
}

TEST(Error, AFailedCheckIsAnInternalErrorNamingTheCondition) {
  const int layer = 7;
  try {
    DT_CHECK(layer < 4, "layer ", layer, " is not on this stage");
    FAIL() << "DT_CHECK(false) did not throw";
  } catch (const InternalError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("test_error_log.cpp:"), std::string::npos) << m;
    EXPECT_NE(m.find("check failed: layer < 4 layer 7 is not on this stage"), std::string::npos) << m;
    EXPECT_NE(m.find("a bug in difftron"), std::string::npos) << m;
  }
}

// Every handler of bad input (catch (const Error&)) still stops on a bug.
TEST(Error, AnInternalErrorIsStillAnError) {
  EXPECT_THROW(DT_CHECK(1 + 1 == 3), Error);
}

TEST(Error, BadInputIsNotAnInternalError) {
  try {
    fail("config.yaml: train.lr: expected a number");
  } catch (const InternalError&) {
    ADD_FAILURE() << "fail() threw an InternalError";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("bug"), std::string::npos) << e.what();
  }
}

// What difftron prints for each (cli/difftron_main.cpp): "internal error"
// only for the bug, and the rank in a job of several.
TEST(Error, TheErrorLineSaysInternalErrorForABugAndNamesTheRank) {
  const std::string bug = what_of([] { DT_CHECK(false); });
  EXPECT_EQ(error_line("train", "internal error", bug, 0, 1).rfind("difftron train: internal error: ", 0), 0u);
  EXPECT_EQ(error_line("eval", "error", "--seq-len 0: expected an integer in [1, 16]", 3, 4),
            "difftron eval: error on rank 3: --seq-len 0: expected an integer in [1, 16]");
}

TEST(Log, InfoGoesToStdoutAndWarningsToStderr) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  log_info("step ", 3, " of ", 10);
  log_warn("checkpoint: warning: could not update latest");
  const std::string out = testing::internal::GetCapturedStdout(), err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "step 3 of 10\n");
  EXPECT_EQ(err, "checkpoint: warning: could not update latest\n");
}

}  // namespace
}  // namespace dt
