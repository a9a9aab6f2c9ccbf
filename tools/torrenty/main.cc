// torrenty: command-line BitTorrent client. Dispatches to one subcommand per file.
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "io/session/session.h"
#include "tools/torrenty/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: torrenty <command> [options]\n"
    "\n"
    "commands:\n"
    "  download TORRENT [-o DIR] [--port N] [--peer HOST:PORT]... [--seed]\n"
    "  seed TORRENT --data DIR [--port N] [--peer HOST:PORT]...\n"
    "  create PATH [--tracker URL[,URL]]... [-o OUT.torrent] [--piece-length SIZE] [--private]\n"
    "  info TORRENT\n"
    "  serve [--state-dir DIR] [--download-dir DIR] [--rpc-port N] [--watch DIR]\n"
    "  bench [--size SIZE] [--piece-length SIZE] [--files N] [--seeders N] [--json]\n"
    "  version\n"
    "\n"
    "Run 'torrenty <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  // Thousands of peer sockets need more than the default 1024 descriptors; the hard limit is
  // ours to take.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // SIGINT/SIGTERM are read through the event loop's signalfd; block them before any thread
  // starts so every thread inherits the mask.
  // `serve` also reads SIGHUP (rescan the watch folder) that way; other commands keep its
  // default action.
  torrenty::io::Session::BlockStopSignals(/*reload=*/argc > 1 && std::string(argv[1]) == "serve");
  if (argc < 2) {
    std::fputs("torrenty: missing command (try 'torrenty --help')\n", stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    std::puts("torrenty " TORRENTY_VERSION);
    return 0;
  }
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "download") return torrenty::tools::RunDownload(sub_argc, sub_argv);
  if (cmd == "seed") return torrenty::tools::RunSeed(sub_argc, sub_argv);
  if (cmd == "create") return torrenty::tools::RunCreate(sub_argc, sub_argv);
  if (cmd == "info") return torrenty::tools::RunInfo(sub_argc, sub_argv);
  if (cmd == "serve") return torrenty::tools::RunServe(sub_argc, sub_argv);
  if (cmd == "bench") return torrenty::tools::RunBench(sub_argc, sub_argv);
  std::fprintf(stderr, "torrenty: unknown command '%s' (try 'torrenty --help')\n", cmd.c_str());
  return 2;
}
