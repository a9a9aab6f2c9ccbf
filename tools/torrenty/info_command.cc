// `torrenty info`: prints a .torrent's name, info-hash, sizes, files and tracker tiers.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/metainfo.h"
#include "engine/types.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kUsage[] =
    "usage: torrenty info TORRENT\n"
    "\n"
    "Prints the name, info-hash, size, files and trackers of a .torrent file.\n"
    "  -h, --help  show this help\n";

// Same cap as the bencode decoder: larger files are not torrents we can use.
constexpr int64_t kMaxTorrentFileBytes = int64_t{64} << 20;

int Fail(absl::string_view message) {
  fprintf(stderr, "torrenty info: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int UsageError(absl::string_view message) {
  fprintf(stderr, "torrenty info: %.*s (see --help)\n", static_cast<int>(message.size()),
          message.data());
  return 2;
}

absl::StatusOr<std::string> ReadTorrentFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  // Checked before reading so a huge file is never pulled into memory.
  if (st.st_size > kMaxTorrentFileBytes) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than ", kMaxTorrentFileBytes, " bytes"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path, ": ", strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return data;
}

std::string HumanSize(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

}  // namespace

int RunInfo(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg.size() > 1 && arg[0] == '-')
      return UsageError(absl::StrCat("unknown option ", argv[i]));
    if (!path.empty()) return UsageError(absl::StrCat("unexpected argument ", argv[i]));
    path = std::string(arg);
  }
  if (path.empty()) return UsageError("missing TORRENT file");

  absl::StatusOr<std::string> data = ReadTorrentFile(path);
  if (!data.ok()) return Fail(data.status().message());
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*data);
  if (!m.ok()) return Fail(m.status().message());

  std::string out;
  absl::StrAppend(&out, "name: ", m->name, "\n");
  absl::StrAppend(&out, "info-hash: ", engine::ToHex(m->info_hash), "\n");
  absl::StrAppend(&out, "total size: ", m->total_length, " bytes (", HumanSize(m->total_length),
                  ")\n");
  absl::StrAppend(&out, "piece length: ", m->piece_length, "\n");
  absl::StrAppend(&out, "pieces: ", m->num_pieces(), "\n");
  absl::StrAppend(&out, "private: ", m->is_private ? "yes" : "no", "\n");
  absl::StrAppend(&out, "files:\n");
  for (size_t i = 0; i < m->files.size(); ++i) {
    absl::StrAppend(&out, "  ", m->files[i].length, "  ", m->RelativePath(i), "\n");
  }
  absl::StrAppend(&out, "trackers:\n");
  for (size_t tier = 0; tier < m->trackers.size(); ++tier) {
    for (const std::string& url : m->trackers[tier]) {
      absl::StrAppend(&out, "  tier ", tier, ": ", url, "\n");
    }
  }
  fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace torrenty::tools
