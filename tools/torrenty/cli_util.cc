#include "tools/torrenty/cli_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "io/disk/small_file.h"

namespace torrenty::tools {
namespace {

// Real .torrent files are at most a few MiB (a 100 GiB torrent with 256 KiB pieces carries
// 8 MiB of hashes); refusing anything larger keeps a hostile file from exhausting memory.
constexpr int64_t kMaxTorrentFileBytes = 64 << 20;
constexpr int64_t kMinPieceLength = int64_t{16} << 10;

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
  if (absl::StartsWithIgnoreCase(path, "magnet:")) {
    return absl::UnimplementedError("magnet links are taken by download and serve only; give a .torrent file");
  }
  if (absl::StartsWithIgnoreCase(path, "http://") || absl::StartsWithIgnoreCase(path, "https://")) {
    return absl::UnimplementedError(
        "URLs are not supported yet; download the .torrent file and give its path");
  }
  absl::StatusOr<std::string> data = io::ReadSmallFile(path, kMaxTorrentFileBytes);
  if (!data.ok()) {
    if (absl::IsInvalidArgument(data.status()) &&
        absl::StrContains(data.status().message(), "too large")) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is too large for a .torrent file"));
    }
    return data.status();
  }
  absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(*data);
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

absl::StatusOr<engine::PeerAddress> ParseIpAddress(absl::string_view text) {
  std::string host(text);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) == 1) {
    return engine::PeerAddress{ntohl(addr.s_addr), 0};
  }
  in6_addr addr6{};
  if (host.find(':') != std::string::npos && inet_pton(AF_INET6, host.c_str(), &addr6) == 1) {
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &addr6, bytes.size());
    return engine::PeerAddress::V6(bytes, 0);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid address '", text, "' (want an IPv4 or IPv6 address)"));
}

absl::StatusOr<engine::PeerAddress> ParsePeerAddress(absl::string_view text) {
  const size_t colon = text.rfind(':');
  // An IPv6 address carries its own colons: BEP 7 and URLs write it in brackets, [::1]:6881.
  const bool bracketed = !text.empty() && text.front() == '[';
  if (colon == absl::string_view::npos || colon == 0 || (bracketed && text[colon - 1] != ']') ||
      (!bracketed && text.substr(0, colon).find(':') != absl::string_view::npos)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid peer '", text, "' (want HOST:PORT or [IPv6]:PORT)"));
  }
  absl::StatusOr<engine::PeerAddress> address = ParseIpAddress(text.substr(0, colon));
  if (!address.ok() ||
      (bracketed && text.substr(1, colon - 2).find(':') == absl::string_view::npos)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer address '", text, "'"));
  }
  absl::StatusOr<uint16_t> port = ParsePort(text.substr(colon + 1));
  if (!port.ok() || *port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer port in '", text, "'"));
  }
  address->port = *port;
  return *address;
}

absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  const absl::StatusOr<int64_t> error = absl::InvalidArgumentError(absl::StrCat(
      "invalid size '", text, "' (want bytes with an optional K, M, G or T suffix, like 4M)"));
  absl::string_view digits = text;
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return error;
  }
  // "4M", "4MB", "4MiB" and "4m" all mean 4 * 2^20: sizes here are memory and piece lengths,
  // where powers of 1024 are what everyone means.
  if (absl::EndsWithIgnoreCase(digits, "ib")) {
    digits.remove_suffix(2);
    if (digits.empty() || !absl::ascii_isalpha(digits.back())) return error;
  } else if (absl::EndsWithIgnoreCase(digits, "b")) {
    digits.remove_suffix(1);
  }
  int shift = 0;
  if (!digits.empty()) {
    switch (absl::ascii_tolower(static_cast<unsigned char>(digits.back()))) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        if (absl::ascii_isalpha(digits.back())) return error;
        break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  int64_t value = 0;
  if (digits.empty() || !absl::ascii_isdigit(digits.front()) || !absl::SimpleAtoi(digits, &value) ||
      value <= 0 || value > (int64_t{1} << 50) >> shift) {
    return error;
  }
  return value << shift;
}

absl::StatusOr<int64_t> ParsePieceLength(absl::string_view text) {
  absl::StatusOr<int64_t> n = ParseSize(text);
  if (!n.ok() || *n < kMinPieceLength || *n > engine::kMaxPieceLength || (*n & (*n - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--piece-length must be a power of two from 16K to ",
                     engine::kMaxPieceLength >> 20, "M, got '", text, "'"));
  }
  return n;
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

std::string HumanDuration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 59.95) return absl::StrFormat("%.1f s", seconds);
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 3600) return absl::StrFormat("%d:%02d", s / 60, s % 60);
  return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
}

}  // namespace torrenty::tools
