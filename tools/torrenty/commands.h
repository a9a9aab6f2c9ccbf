// Entry points of the torrenty subcommands; main.cc dispatches on argv[1].
// Each returns the process exit code and prints failures as one line on stderr.
#pragma once

namespace torrenty::tools {

// argv[0] is the subcommand name ("create", "info", ...), the rest its arguments.
int RunCreate(int argc, char** argv);
int RunInfo(int argc, char** argv);
int RunDownload(int argc, char** argv);
int RunSeed(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunServe(int argc, char** argv);

}  // namespace torrenty::tools
