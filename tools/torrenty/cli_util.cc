#include "tools/torrenty/cli_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace torrenty::tools {
namespace {

// Real .torrent files are at most a few MiB (a 100 GiB torrent with 256 KiB pieces carries
// 8 MiB of hashes); refusing anything larger keeps a hostile file from exhausting memory.
constexpr int64_t kMaxTorrentFileBytes = 64 << 20;

}  // namespace

int Fail(absl::string_view command, absl::string_view message) {
  std::fprintf(stderr, "torrenty %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(message.size()), message.data());
  return 1;
}

int UsageError(absl::string_view command, absl::string_view message) {
  Fail(command, message);
  return 2;
}

bool TakeValue(int argc, char** argv, int* i, absl::string_view flag, std::string* value,
               bool* error) {
  absl::string_view arg = argv[*i];
  if (arg == flag) {
    if (*i + 1 >= argc) {
      *error = true;
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

absl::StatusOr<engine::Metainfo> LoadTorrent(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  if (st.st_size > kMaxTorrentFileBytes) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is too large for a .torrent file"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("cannot read ", path));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(data);
  if (!meta.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", meta.status().message()));
  }
  return meta;
}

absl::StatusOr<uint16_t> ParsePort(absl::string_view text) {
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text, &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port '", text, "'"));
  }
  return static_cast<uint16_t>(port);
}

absl::StatusOr<engine::PeerAddress> ParsePeerAddress(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer '", text, "' (want HOST:PORT)"));
  }
  std::string host(text.substr(0, colon));
  if (host == "localhost") host = "127.0.0.1";
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer address '", text, "'"));
  }
  absl::StatusOr<uint16_t> port = ParsePort(text.substr(colon + 1));
  if (!port.ok() || *port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer port in '", text, "'"));
  }
  return engine::PeerAddress{ntohl(addr.s_addr), *port};
}

absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  int64_t mult = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        mult = int64_t{1} << 10;
        break;
      case 'M':
      case 'm':
        mult = int64_t{1} << 20;
        break;
      case 'G':
      case 'g':
        mult = int64_t{1} << 30;
        break;
      default:
        break;
    }
    if (mult != 1) text.remove_suffix(1);
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value <= 0 || value > (int64_t{1} << 50) / mult) {
    return absl::InvalidArgumentError(absl::StrCat("invalid size '", text, "'"));
  }
  return value * mult;
}

absl::Status WriteAtomically(const std::string& path, absl::string_view data) {
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

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  // Two literal formats: absl::StrFormat checks its format string at compile time.
  return unit == 0 ? absl::StrFormat("%.0f %s", bytes, kUnits[unit])
                   : absl::StrFormat("%.1f %s", bytes, kUnits[unit]);
}

}  // namespace torrenty::tools
