// Subcommands of the difftron binary. Each parses its own arguments, prints
// --help, and returns the process exit code; bad input throws dt::Error.
#pragma once

namespace dt {
int cmd_train(int argc, char** argv);     // cli/cmd_train.cpp
int cmd_prepare(int argc, char** argv);   // cli/cmd_prepare.cpp
int cmd_tokenize(int argc, char** argv);  // cli/cmd_tokenize.cpp
int cmd_inspect(int argc, char** argv);   // cli/cmd_inspect.cpp
int cmd_export(int argc, char** argv);    // cli/cmd_export.cpp
int cmd_eval(int argc, char** argv);      // cli/cmd_eval.cpp
int cmd_generate(int argc, char** argv);  // cli/cmd_generate.cpp
int cmd_report(int argc, char** argv);    // cli/cmd_report.cpp
}  // namespace dt
