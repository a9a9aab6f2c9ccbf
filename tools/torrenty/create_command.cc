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

int Fail(absl::string_view message) {
  fprintf(stderr, "torrenty create: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int UsageError(absl::string_view message) {
  fprintf(stderr, "torrenty create: %.*s (see --help)\n", static_cast<int>(message.size()),
          message.data());
  return 2;
}

absl::Status WriteAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  // fsync before rename so a crash cannot leave an empty file under the final name.
  if (fsync(fd) != 0 || close(fd) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(err)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename to ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

// Matches "--flag VALUE" and "--flag=VALUE"; advances *i past the consumed arguments.
// Returns false if argv[*i] is not this flag; sets *missing if the value is absent.
bool TakeValue(int argc, char** argv, int* i, std::string_view flag, std::string* value,
               bool* missing) {
  const std::string_view arg = argv[*i];
  if (arg == flag) {
    if (*i + 1 >= argc) {
      *missing = true;
      return true;
    }
    *value = argv[++*i];
    return true;
  }
  if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag && arg[flag.size()] == '=') {
    *value = std::string(arg.substr(flag.size() + 1));
    return true;
  }
  return false;
}

}  // namespace

int RunCreate(int argc, char** argv) {
  io::CreateOptions options;
  std::string input;
  std::string output;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string value;
    bool missing = false;
    if (arg == "-h" || arg == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--private") {
      options.is_private = true;
    } else if (TakeValue(argc, argv, &i, "--tracker", &value, &missing)) {
      if (missing) return UsageError("--tracker needs a URL");
      if (value.empty()) return UsageError("--tracker URL is empty");
      options.trackers.push_back(value);
    } else if (TakeValue(argc, argv, &i, "-o", &value, &missing) ||
               TakeValue(argc, argv, &i, "--output", &value, &missing)) {
      if (missing || value.empty()) return UsageError("-o needs a file name");
      output = value;
    } else if (TakeValue(argc, argv, &i, "--piece-length", &value, &missing)) {
      if (missing) return UsageError("--piece-length needs a number of bytes");
      int64_t n = 0;
      if (!absl::SimpleAtoi(absl::string_view(value), &n) || n < 16384 || (n & (n - 1)) != 0) {
        return UsageError(
            absl::StrCat("--piece-length must be a power of two >= 16384, got \"", value, "\""));
      }
      options.piece_length = n;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError(absl::StrCat("unknown option ", argv[i]));
    } else if (input.empty()) {
      input = std::string(arg);
    } else {
      return UsageError(absl::StrCat("unexpected argument ", argv[i]));
    }
  }
  if (input.empty()) return UsageError("missing PATH to share");
  if (output.empty()) return UsageError("missing -o OUT.torrent");
  if (options.trackers.empty()) return UsageError("missing --tracker URL");

  absl::StatusOr<std::string> torrent = io::CreateTorrent(input, options);
  if (!torrent.ok()) return Fail(torrent.status().message());
  if (absl::Status s = WriteAtomically(output, *torrent); !s.ok()) return Fail(s.message());
  return 0;
}

}  // namespace torrenty::tools
