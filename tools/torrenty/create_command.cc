// `torrenty create`: parses flags, builds the torrent via io::CreateTorrent and writes it
// atomically (temp file + rename) so a failed run never leaves a truncated .torrent.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "io/torrent_creator.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kUsage[] =
    "usage: torrenty create PATH --tracker URL [--tracker URL]... -o OUT.torrent\n"
    "                       [--piece-length BYTES] [--private]\n"
    "\n"
    "Creates a torrent from a file or a directory (recursively; symlinks are rejected).\n"
    "  --tracker URL         announce URL; repeat for backups, each becomes its own tier\n"
    "  -o, --output FILE     where to write the .torrent (replaced if it exists)\n"
    "  --piece-length BYTES  power of two >= 16384; default picks ~1000-2000 pieces\n"
    "  --private             set the BEP 27 private flag (no DHT/PEX)\n"
    "  -h, --help            show this help\n";

}  // namespace

int RunCreate(int argc, char** argv) {
  io::CreateOptions options;
  std::string input;
  std::string output;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    std::string value;
    bool missing = false;
    if (arg == "-h" || arg == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--private") {
      options.is_private = true;
    } else if (TakeValue(argc, argv, &i, "--tracker", &value, &missing)) {
      if (missing) return UsageError("create", "--tracker needs a URL");
      if (value.empty()) return UsageError("create", "--tracker URL is empty");
      options.trackers.push_back(value);
    } else if (TakeValue(argc, argv, &i, "-o", &value, &missing) ||
               TakeValue(argc, argv, &i, "--output", &value, &missing)) {
      if (missing || value.empty()) return UsageError("create", "-o needs a file name");
      output = value;
    } else if (TakeValue(argc, argv, &i, "--piece-length", &value, &missing)) {
      if (missing) return UsageError("create", "--piece-length needs a number of bytes");
      int64_t n = 0;
      if (!absl::SimpleAtoi(absl::string_view(value), &n) || n < 16384 || (n & (n - 1)) != 0) {
        return UsageError(
            "create",
            absl::StrCat("--piece-length must be a power of two >= 16384, got \"", value, "\""));
      }
      options.piece_length = n;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError("create", absl::StrCat("unknown option ", argv[i]));
    } else if (input.empty()) {
      input = std::string(arg);
    } else {
      return UsageError("create", absl::StrCat("unexpected argument ", argv[i]));
    }
  }
  if (input.empty()) return UsageError("create", "missing PATH to share");
  if (output.empty()) return UsageError("create", "missing -o OUT.torrent");
  if (options.trackers.empty()) return UsageError("create", "missing --tracker URL");

  absl::StatusOr<std::string> torrent = io::CreateTorrent(input, options);
  if (!torrent.ok()) return Fail("create", torrent.status().message());
  if (absl::Status s = WriteAtomically(output, *torrent); !s.ok())
    return Fail("create", s.message());
  return 0;
}

}  // namespace torrenty::tools
