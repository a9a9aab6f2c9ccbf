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
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kUsage[] =
    "usage: torrenty info TORRENT\n"
    "\n"
    "Prints the name, info-hash, size, files and trackers of a .torrent file.\n"
    "  -h, --help  show this help\n";

}  // namespace

int RunInfo(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg.size() > 1 && arg[0] == '-')
      return UsageError("info", absl::StrCat("unknown option ", argv[i]));
    if (!path.empty()) return UsageError("info", absl::StrCat("unexpected argument ", argv[i]));
    path = std::string(arg);
  }
  if (path.empty()) return UsageError("info", "missing TORRENT file");

  absl::StatusOr<engine::Metainfo> m = LoadTorrent(path);
  if (!m.ok()) return Fail("info", m.status().message());

  std::string out;
  absl::StrAppend(&out, "name: ", m->name, "\n");
  absl::StrAppend(&out, "info-hash: ", engine::ToHex(m->info_hash), "\n");
  absl::StrAppend(&out, "total size: ", m->total_length, " bytes (",
                  HumanBytes(static_cast<double>(m->total_length)), ")\n");
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
