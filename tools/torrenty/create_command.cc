// `torrenty create`: parses flags, builds the torrent via io::CreateTorrent and writes it
// atomically (temp file + rename) so a failed run never leaves a truncated .torrent.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/metainfo/magnet.h"
#include "engine/metainfo/metainfo.h"
#include "io/disk/torrent_creator.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kUsage[] =
    "usage: torrenty create PATH [--tracker URL[,URL...]]... [-o OUT.torrent]\n"
    "                       [--piece-length SIZE] [--private] [--comment TEXT]\n"
    "                       [--source TEXT] [--web-seed URL]...\n"
    "\n"
    "Creates a torrent from a file or a directory (recursively). Symbolic links are followed:\n"
    "a linked file's content is included under the link's name; dangling links and link loops\n"
    "are refused. Prints the output path and the info-hash.\n"
    "  --tracker URL[,URL]   a tracker tier: each flag is a new tier, commas put several URLs in\n"
    "                        one tier; without any, the torrent has no announce URL\n"
    "  -o, --output FILE     where to write the .torrent (default: ./<name>.torrent; replaced\n"
    "                        if it exists)\n"
    "  --piece-length SIZE   power of two from 16K (K/M suffixes); default picks ~1000-2000\n"
    "                        pieces\n"
    "  --private             set the BEP 27 private flag (no DHT/PEX)\n"
    "  --comment TEXT        free-form comment\n"
    "  --source TEXT         info dict 'source' (changes the info-hash; used by private trackers)\n"
    "  --web-seed URL        BEP 19 web seed, written to 'url-list' (repeatable)\n"
    "  -h, --help            show this help\n";

// Hashing progress on stderr, only for inputs that take a while: nothing before kQuiet has
// passed, then at most one update per kTtyEvery on a terminal (redrawn in place) or one line per
// kLogEvery otherwise.
class HashProgress {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kQuiet{500};
  static constexpr std::chrono::milliseconds kTtyEvery{200};
  static constexpr std::chrono::milliseconds kLogEvery{1000};

  HashProgress() : start_(Clock::now()), tty_(isatty(2) == 1) {}

  void Update(int64_t hashed, int64_t total) {
    const Clock::time_point now = Clock::now();
    if (now - start_ < kQuiet) return;
    if (shown_ && now - last_ < (tty_ ? kTtyEvery : kLogEvery)) return;
    shown_ = true;
    last_ = now;
    const double pct = total > 0 ? 100.0 * static_cast<double>(hashed) / total : 100.0;
    std::fprintf(stderr, "%shashing: %5.1f%% (%s of %s)%s", tty_ ? "\r" : "", pct,
                 HumanBytes(static_cast<double>(hashed)).c_str(),
                 HumanBytes(static_cast<double>(total)).c_str(), tty_ ? "   " : "\n");
  }

  void Finish(int64_t total) {
    if (!shown_) return;
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    std::fprintf(stderr, "%shashed %s in %.1f s (%s/s)%s\n", tty_ ? "\r" : "",
                 HumanBytes(static_cast<double>(total)).c_str(), seconds,
                 HumanBytes(static_cast<double>(total) / std::max(seconds, 1e-3)).c_str(),
                 tty_ ? "          " : "");
  }

 private:
  Clock::time_point start_;
  Clock::time_point last_{};
  bool tty_;
  bool shown_ = false;
};

}  // namespace

int RunCreate(int argc, char** argv) {
  io::CreateOptions options;
  options.created_by = absl::StrCat("torrenty/", TORRENTY_VERSION);
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
      std::vector<std::string> tier;
      for (absl::string_view url : absl::StrSplit(value, ',')) {
        url = absl::StripAsciiWhitespace(url);
        if (url.empty()) {
          return UsageError("create", absl::StrCat("--tracker has an empty URL in '", value, "'"));
        }
        tier.emplace_back(url);
      }
      options.tiers.push_back(std::move(tier));
    } else if (TakeValue(argc, argv, &i, "--web-seed", &value, &missing)) {
      value = std::string(absl::StripAsciiWhitespace(value));
      if (missing || value.empty()) return UsageError("create", "--web-seed needs a URL");
      options.web_seeds.push_back(value);
    } else if (TakeValue(argc, argv, &i, "--comment", &value, &missing)) {
      if (missing) return UsageError("create", "--comment needs a text");
      options.comment = value;
    } else if (TakeValue(argc, argv, &i, "--source", &value, &missing)) {
      if (missing) return UsageError("create", "--source needs a text");
      options.source = value;
    } else if (TakeValue(argc, argv, &i, "-o", &value, &missing) ||
               TakeValue(argc, argv, &i, "--output", &value, &missing)) {
      if (missing || value.empty()) return UsageError("create", "-o needs a file name");
      output = value;
    } else if (TakeValue(argc, argv, &i, "--piece-length", &value, &missing)) {
      if (missing) return UsageError("create", "--piece-length needs a size, like 1M");
      absl::StatusOr<int64_t> n = ParsePieceLength(value);
      if (!n.ok()) return UsageError("create", n.status().message());
      options.piece_length = *n;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError("create", absl::StrCat("unknown option ", argv[i]));
    } else if (input.empty()) {
      input = std::string(arg);
    } else {
      return UsageError("create", absl::StrCat("unexpected argument ", argv[i]));
    }
  }
  if (input.empty()) return UsageError("create", "missing PATH to share");

  HashProgress progress;
  options.on_progress = [&](int64_t hashed, int64_t total) { progress.Update(hashed, total); };
  absl::StatusOr<std::string> torrent = io::CreateTorrent(input, options);
  if (!torrent.ok()) return Fail("create", torrent.status().message());
  // Reading back what was written checks it and yields the name and info-hash to print.
  absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(*torrent);
  if (!meta.ok()) {
    return Fail("create", absl::StrCat("the new torrent does not load: ", meta.status().message()));
  }
  progress.Finish(meta->total_length);
  if (output.empty()) output = absl::StrCat(meta->name, ".torrent");
  if (absl::Status s = WriteAtomically(output, *torrent); !s.ok())
    return Fail("create", s.message());
  std::printf("wrote %s: %zu %s, %s in %u pieces of %s\n", output.c_str(), meta->files.size(),
              meta->files.size() == 1 ? "file" : "files",
              HumanBytes(static_cast<double>(meta->total_length)).c_str(), meta->num_pieces(),
              HumanBytes(static_cast<double>(meta->piece_length)).c_str());
  std::printf("info-hash: %s\n", engine::ToHex(meta->info_hash).c_str());
  std::printf("magnet: %s\n", engine::MakeMagnet(*meta).c_str());
  return 0;
}

}  // namespace torrenty::tools
