// `torrenty download` and `torrenty seed`: argument parsing, start-up checks of existing data,
// progress display; the transfer itself runs in io::TorrentSession.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/magnet.h"
#include "engine/torrent/metadata_fetch.h"
#include "io/disk/file_store.h"
#include "io/disk/recheck.h"
#include "io/disk/resume_writer.h"
#include "io/session/metadata_fetcher.h"
#include "io/session/torrent_session.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"
#include "tools/torrenty/session_flags.h"

namespace torrenty::tools {
namespace {

constexpr char kDownloadUsage[] =
    "usage: torrenty download TORRENT|MAGNET [-o DIR] [--port N] [--peer HOST:PORT]... [--seed]\n"
    "  Downloads TORRENT into DIR/<name> (DIR defaults to the current folder) and exits 0 once\n"
    "  every piece is SHA-1-verified and on disk. Existing data in DIR is checked first and only\n"
    "  missing pieces are fetched. A magnet link (\"magnet:?xt=urn:btih:...\") first fetches the\n"
    "  metadata from peers (x.pe, --peer, its http trackers), checks it against the info-hash and\n"
    "  saves it as DIR/<name>.torrent.\n"
    "  -o, --output DIR     where to put the content\n"
    "  --port N             listening port (default: first free of 6881-6889)\n"
    "  --bind ADDR          listen on and connect from this IPv4 or IPv6 address only\n"
    "  --peer HOST:PORT     also connect to this peer (repeatable; works without a tracker;\n"
    "                       IPv6 as [ADDR]:PORT)\n"
    "  --dht-bootstrap HOST:PORT  DHT node to start from (repeatable; default: the public\n"
    "                       routers; IPv6 as [ADDR]:PORT); nodes found are kept in\n"
    "                       ~/.local/state/torrenty/dht.dat\n"
    "  --no-dht             do not use the DHT (private torrents never do)\n"
    "  --seed               keep seeding after the download until SIGINT/SIGTERM\n"
    "  --no-save-torrent    with a magnet link, do not save DIR/<name>.torrent\n"
    "  --only N[,N...]      fetch only these files (numbered from 0 in `torrenty info`'s list);\n"
    "                       pieces they share with other files are fetched whole\n"
    "  --preallocate        reserve the files' full size on disk before downloading\n"
    "                       (default: sparse files that grow as pieces arrive)\n"
    "  --hash-threads N     SHA-1 verification threads (default 2)\n"
    "  --threads N          event-loop shards, one io_uring ring each (default: one per CPU)\n"
    "  --max-open-files N   torrent files open at once, over all shards (default 512)\n"
    "  --max-download-rate R  download limit, bytes/s (500K, 10M; default 0 = none)\n"
    "  --max-upload-rate R    upload limit, bytes/s (default 0 = none)\n"
    "  --no-lsd             no local peer discovery (BEP 14 multicast on the LAN)\n"
    "  --no-pex             no peer exchange (BEP 11) with connected peers\n"
    "  --no-web-seeds       ignore the torrent's web seeds (BEP 19 url-list)\n"
    "  --web-seed-max-rate R  cap on web-seed (HTTP origin) traffic, bytes/s (default 0 = none)\n"
    "  --piece-memory BYTES memory for pieces in flight (default 32M; K/M/G suffixes); when\n"
    "                       it is used up fewer requests go out instead of memory growing\n"
    "  -v, --verbose        also one line per peer connect and close (with the reason)\n"
    "                       and per tracker reply\n"
    "  -q, --quiet          print nothing but errors\n";

constexpr char kSeedUsage[] =
    "usage: torrenty seed TORRENT --data DIR [--port N] [--peer HOST:PORT]...\n"
    "  Verifies DIR/<name> against TORRENT, then serves it until SIGINT/SIGTERM.\n"
    "  --data DIR           folder holding the content\n"
    "  --port N             listening port (default: first free of 6881-6889)\n"
    "  --bind ADDR          listen on and connect from this IPv4 or IPv6 address only\n"
    "  --peer HOST:PORT     also connect to this peer (repeatable; IPv6 as [ADDR]:PORT)\n"
    "  --dht-bootstrap HOST:PORT  DHT node to start from (repeatable; default: the public\n"
    "                       routers; IPv6 as [ADDR]:PORT); nodes found are kept in\n"
    "                       ~/.local/state/torrenty/dht.dat\n"
    "  --no-dht             do not use the DHT (private torrents never do)\n"
    "  --hash-threads N     SHA-1 verification threads (default 2)\n"
    "  --threads N          event-loop shards, one io_uring ring each (default: one per CPU)\n"
    "  --max-open-files N   torrent files open at once, over all shards (default 512)\n"
    "  --max-download-rate R  download limit, bytes/s (500K, 10M; default 0 = none)\n"
    "  --max-upload-rate R    upload limit, bytes/s (default 0 = none)\n"
    "  --no-lsd             no local peer discovery (BEP 14 multicast on the LAN)\n"
    "  --no-pex             no peer exchange (BEP 11) with connected peers\n"
    "  --super-seed         BEP 16 super-seeding: show each peer one piece at a time and\n"
    "                       hand every piece out once before any twice, so the peers spread\n"
    "                       the pieces among themselves (for the first seed of a swarm)\n"
    "  -v, --verbose        also one line per peer connect and close (with the reason)\n"
    "                       and per tracker reply\n"
    "  -q, --quiet          print nothing but errors\n";

struct TransferArgs {
  std::string torrent;
  std::string dir;
  bool dir_given = false;
  SessionFlags session;
  std::vector<engine::PeerAddress> peers;
  bool seed = false;
  bool preallocate = false;
  bool save_torrent = true;  // a magnet's metadata as DIR/<name>.torrent
  int stop_signal = 0;       // the signal that ended a magnet's metadata phase
  std::vector<int> only;     // --only: file numbers as `info` lists them (pad files left out)
  bool help = false;
  bool quiet() const { return session.quiet(); }
};

// Returns an exit code when parsing ends the command (help or error), else -1.
int ParseTransferArgs(absl::string_view cmd, int argc, char** argv, bool is_seed,
                      TransferArgs* out) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string value;
    bool missing = false;
    if (arg == "-h" || arg == "--help") {
      out->help = true;
      return -1;
    }
    if (!is_seed && (TakeValue(argc, argv, &i, "-o", &value, &missing) ||
                     TakeValue(argc, argv, &i, "--output", &value, &missing))) {
      if (missing) return UsageError(cmd, "-o needs a folder");
      out->dir = value;
      out->dir_given = true;
    } else if (is_seed && TakeValue(argc, argv, &i, "--data", &value, &missing)) {
      if (missing) return UsageError(cmd, "--data needs a folder");
      out->dir = value;
      out->dir_given = true;
    } else if (const FlagParse f =
                   TakeSessionFlag(cmd, argc, argv, &i, &out->session,
                                   {.piece_memory = !is_seed, .super_seed = is_seed});
               f != FlagParse::kNotMine) {
      if (f == FlagParse::kBad) return 2;
    } else if (TakeValue(argc, argv, &i, "--peer", &value, &missing)) {
      absl::StatusOr<engine::PeerAddress> peer = ParsePeerAddress(value);
      if (missing || !peer.ok())
        return UsageError(cmd, missing ? "--peer needs HOST:PORT" : peer.status().message());
      out->peers.push_back(*peer);
    } else if (!is_seed && TakeValue(argc, argv, &i, "--only", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--only needs file numbers N[,N...]");
      for (absl::string_view n : absl::StrSplit(value, ',')) {
        int index = 0;
        if (!absl::SimpleAtoi(n, &index) || index < 0) {
          return UsageError(cmd,
                            absl::StrCat("--only needs file numbers N[,N...], got '", value, "'"));
        }
        out->only.push_back(index);
      }
    } else if (!is_seed && arg == "--seed") {
      out->seed = true;
    } else if (!is_seed && arg == "--preallocate") {
      out->preallocate = true;
    } else if (!is_seed && arg == "--no-save-torrent") {
      out->save_torrent = false;
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError(cmd, absl::StrCat("unknown option '", arg, "'"));
    } else if (out->torrent.empty()) {
      out->torrent = std::string(arg);
    } else {
      return UsageError(cmd, absl::StrCat("unexpected argument '", arg, "'"));
    }
  }
  if (out->torrent.empty()) return UsageError(cmd, "missing TORRENT (see --help)");
  if (is_seed && !out->dir_given) return UsageError(cmd, "missing --data DIR (see --help)");
  if (!out->dir_given) out->dir = ".";
  return -1;
}

class ProgressPrinter {
 public:
  // A quiet printer prints nothing: with -q only errors (printed by the caller) are shown.
  ProgressPrinter(std::string name, bool seed_after, bool quiet)
      : name_(std::move(name)), tty_(isatty(2) == 1), seed_after_(seed_after), quiet_(quiet) {}

  void Update(const io::SessionProgress& p) {
    last_ = p;
    if (p.complete && !complete_seen_) {
      complete_seen_ = true;
      downloaded_in_s_ = p.elapsed_s;
      if (seed_after_) {
        // Interactive use wants to know the moment the download is done and serving begins.
        if (p.downloaded_payload > 0)
          Log(absl::StrCat(name_, ": download complete in ", Summary()));
        Log(absl::StrCat(name_, ": seeding until SIGINT/SIGTERM"));
      }
    }
    if (quiet_) return;
    const double pct =
        p.total_bytes > 0 ? 100.0 * static_cast<double>(p.verified_bytes) / p.total_bytes : 100.0;
    std::string eta = "--:--";
    if (p.download_rate > 1 && !p.complete) {
      const int64_t s = static_cast<int64_t>((p.total_bytes - p.verified_bytes) / p.download_rate);
      eta = absl::StrFormat("%d:%02d", s / 60, s % 60);
    }
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(pct / 100.0 * kWidth);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(kWidth - filled), '.');
      std::fprintf(stderr, "\r[%s] %5.1f%%  down %s/s  up %s/s  peers %u  ETA %s   ", bar.c_str(),
                   pct, HumanBytes(p.download_rate).c_str(), HumanBytes(p.upload_rate).c_str(),
                   p.peers, eta.c_str());
      dirty_ = true;
    } else if (p.elapsed_s - last_line_s_ >= 5.0) {
      last_line_s_ = p.elapsed_s;
      std::fprintf(stderr, "%s: %.1f%% (%u/%u pieces) down %s/s up %s/s peers %u eta %s\n",
                   name_.c_str(), pct, p.pieces_have, p.pieces_total,
                   HumanBytes(p.download_rate).c_str(), HumanBytes(p.upload_rate).c_str(), p.peers,
                   eta.c_str());
    }
  }
  void Log(const std::string& line) {
    if (quiet_) return;
    EndLine();
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  void EndLine() {
    if (dirty_) std::fputc('\n', stderr);
    dirty_ = false;
  }
  // "12.3 s (4.5 MiB/s average)": time from the start of the session to the last piece, and the
  // payload fetched in that time.
  std::string Summary() const {
    const double s = complete_seen_ ? downloaded_in_s_ : last_.elapsed_s;
    return absl::StrCat(HumanDuration(s), " (",
                        HumanBytes(last_.downloaded_payload / std::max(s, 1e-3)), "/s average)");
  }
  const io::SessionProgress& last() const { return last_; }

 private:
  std::string name_;
  bool tty_;
  bool seed_after_;
  bool quiet_;
  bool dirty_ = false;
  double last_line_s_ = -100;
  io::SessionProgress last_;
  bool complete_seen_ = false;
  double downloaded_in_s_ = 0;
};

// The start-up recheck runs before any peer work, so it may use every core; two threads per core
// keep the cores busy while the others wait for their next pread (measured on a 2-core VM: 1 GiB
// warm in 0.71 s with 1 thread, 0.57 s with 2, 0.41 s with 4).
int RecheckThreads(const TransferArgs& args) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(args.session.hash_threads, 2 * cores);
}

// What already exists under dir: a folder without the content yields an empty set; resume data
// whose file stamps all still match is trusted as it is; anything else is verified piece by piece.
absl::StatusOr<engine::Bitfield> ExistingPieces(const engine::Metainfo& meta,
                                                const std::string& dir, int threads, bool quiet,
                                                const std::vector<bool>& files_needed) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / meta.name, ec)) {
    return engine::Bitfield(meta.num_pieces());
  }
  absl::StatusOr<engine::ResumeData> resume = io::LoadResume(dir, meta);
  if (resume.ok()) {
    const std::vector<engine::FileStamp> stamps = io::StampFiles(dir, meta);
    if (stamps == resume->files) {
      if (!quiet)
        std::fprintf(stderr, "%s: resume data matches the files: %u/%u pieces, recheck skipped\n",
                     meta.name.c_str(), resume->have.count(), meta.num_pieces());
      return resume->have;
    }
    if (!quiet)
      std::fprintf(stderr, "%s: files changed since the resume data was saved; rechecking\n",
                   meta.name.c_str());
  } else if (!absl::IsNotFound(resume.status())) {
    if (!quiet)
      std::fprintf(stderr, "%s: ignoring resume data (%.*s); rechecking\n", meta.name.c_str(),
                   static_cast<int>(resume.status().message().size()),
                   resume.status().message().data());
  }
  absl::StatusOr<std::unique_ptr<io::FileStore>> store =
      io::FileStore::Open(dir, meta, io::OpenMode::kCreate, files_needed);
  if (!store.ok()) return store.status();
  return io::CheckExistingData(**store, threads);
}

// --only as per-file flags of the metainfo (empty: every file), and the files a download of
// their pieces writes to.
absl::Status SelectFiles(const engine::Metainfo& meta, const std::vector<int>& only,
                         std::vector<bool>* wanted, std::vector<bool>* needed) {
  if (only.empty()) return absl::OkStatus();
  std::vector<size_t> listed;
  for (size_t i = 0; i < meta.files.size(); ++i) {
    if (!meta.files[i].pad) listed.push_back(i);
  }
  wanted->assign(meta.files.size(), false);
  for (int n : only) {
    if (static_cast<size_t>(n) >= listed.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--only: no file ", n, " (the torrent lists ", listed.size(), ")"));
    }
    (*wanted)[listed[static_cast<size_t>(n)]] = true;
  }
  *needed = engine::FilesTouched(meta, engine::WantedPieces(meta, *wanted));
  for (size_t i = 0; i < needed->size(); ++i) (*needed)[i] = (*needed)[i] || (*wanted)[i];
  return absl::OkStatus();
}

int RunTransfer(absl::string_view cmd, const TransferArgs& args, const engine::Metainfo& meta,
                const engine::Bitfield& have, bool seed_after,
                const std::vector<bool>& files_wanted = {}) {
  ProgressPrinter printer(meta.name, seed_after, args.quiet());
  io::SessionOptions opts;
  opts.data_dir = args.dir;
  args.session.ApplyTo(&opts);
  if (!meta.is_private) opts.dht = args.session.Dht(DefaultDhtStateFile());
  opts.peers = args.peers;
  opts.files_wanted = files_wanted;
  opts.seed_after_complete = seed_after;
  opts.on_progress = [&](const io::SessionProgress& p) { printer.Update(p); };
  opts.on_log = [&](const std::string& line) { printer.Log(line); };
  absl::StatusOr<std::unique_ptr<io::TorrentSession>> session =
      io::TorrentSession::Create(meta, have, opts);
  if (!session.ok()) return Fail(cmd, session.status().message());
  printer.Log(absl::StrCat(meta.name, ": ", have.count(), "/", meta.num_pieces(),
                           " pieces present, listening on port ", (*session)->port(), " (",
                           (*session)->threads(), " shards)"));
  absl::Status st = (*session)->Run();
  printer.EndLine();
  const io::SessionProgress& last = printer.last();
  if (seed_after && (st.ok() || absl::IsCancelled(st))) {
    printer.Log(absl::StrCat(meta.name, ": uploaded ",
                             HumanBytes(static_cast<double>(last.uploaded_payload)), " in ",
                             HumanDuration(last.elapsed_s)));
  }
  if (absl::IsCancelled(st)) {
    Fail(cmd, st.message());
    // The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
    return (*session)->stop_signal() == SIGTERM ? 128 + SIGTERM : 128 + SIGINT;
  }
  if (!st.ok()) return Fail(cmd, st.message());
  if (!seed_after && have.count() < meta.num_pieces()) {
    printer.Log(absl::StrCat(meta.name, ": downloaded ",
                             HumanBytes(static_cast<double>(last.downloaded_payload)), " in ",
                             printer.Summary()));
  }
  return 0;
}

// The metadata phase of a magnet download: peers from x.pe, --peer and the link's trackers, the
// info dict verified against the info-hash, saved next to the content unless --no-save-torrent.
// x.pe peers join args->peers, so the download dials them too.
absl::StatusOr<engine::Metainfo> MetainfoFromMagnet(TransferArgs* args) {
  absl::StatusOr<engine::MagnetLink> link = engine::ParseMagnet(args->torrent);
  if (!link.ok()) return link.status();
  const std::string label = link->name.empty() ? engine::ToHex(link->info_hash) : link->name;
  const bool quiet = args->quiet();
  for (const engine::MagnetPeer& p : link->peers) {
    // The link's IPv6 hosts come without their brackets.
    const bool v6 = p.host.find(':') != std::string::npos;
    absl::StatusOr<engine::PeerAddress> a =
        ParsePeerAddress(absl::StrCat(v6 ? "[" : "", p.host, v6 ? "]:" : ":", p.port));
    if (!a.ok()) {
      if (!quiet)
        std::fprintf(stderr, "%s: skipping x.pe %s (%s)\n", label.c_str(), p.host.c_str(),
                     std::string(a.status().message()).c_str());
      continue;
    }
    if (std::find(args->peers.begin(), args->peers.end(), *a) == args->peers.end()) {
      args->peers.push_back(*a);
    }
  }
  if (args->peers.empty() && link->trackers.empty() && !args->session.dht) {
    return absl::InvalidArgumentError(
        "the magnet link names no peers (x.pe) and no trackers (tr), and the DHT is off; give "
        "peers with --peer HOST:PORT");
  }
  io::MetadataFetchOptions opts;
  opts.info_hash = link->info_hash;
  opts.peers = args->peers;
  opts.trackers = link->trackers;
  opts.listen_port = args->session.port;
  if (args->session.dht) {
    opts.dht = args->session.Dht(DefaultDhtStateFile());
    opts.dht_port = args->session.port;
  }
  opts.verbose = args->session.verbosity == io::Verbosity::kVerbose;
  opts.stop_signal = &args->stop_signal;
  const bool tty = isatty(2) == 1;
  double last_line = -100;
  const auto start = std::chrono::steady_clock::now();
  bool dirty = false;
  opts.on_progress = [&](size_t peers, size_t) {
    if (quiet) return;
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (tty) {
      std::fprintf(stderr, "\r%s: fetching metadata (%zu peers)   ", label.c_str(), peers);
      dirty = true;
    } else if (t - last_line >= 5.0) {
      last_line = t;
      std::fprintf(stderr, "%s: fetching metadata (%zu peers)\n", label.c_str(), peers);
    }
  };
  opts.on_log = [&](const std::string& line) {
    if (quiet) return;
    if (dirty) std::fputc('\n', stderr);
    dirty = false;
    std::fprintf(stderr, "%s: %s\n", label.c_str(), line.c_str());
  };
  if (!quiet) std::fprintf(stderr, "%s: fetching metadata (0 peers)\n", label.c_str());
  absl::StatusOr<std::string> info = io::FetchMetadata(opts);
  if (dirty) std::fputc('\n', stderr);
  if (!info.ok()) return info.status();
  absl::StatusOr<engine::Metainfo> meta = engine::ParseInfoDict(*info);
  if (!meta.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the metadata matches the info-hash but is not a valid torrent: ",
                     meta.status().message()));
  }
  for (const std::string& url : link->trackers) meta->trackers.push_back({url});
  if (args->save_torrent) {
    std::error_code ec;
    std::filesystem::create_directories(args->dir, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("cannot create ", args->dir, ": ", ec.message()));
    const std::string path =
        (std::filesystem::path(args->dir) / (meta->name + ".torrent")).string();
    const std::string file = engine::MakeTorrentFile(*info, link->trackers);
    absl::StatusOr<engine::Metainfo> existing = LoadTorrent(path);
    if (std::filesystem::exists(path, ec) &&
        !(existing.ok() && existing->info_hash == meta->info_hash)) {
      // Never replace a different torrent the user keeps there.
      if (!quiet)
        std::fprintf(stderr, "%s: %s exists and is another torrent; not saved\n",
                     meta->name.c_str(), path.c_str());
    } else if (absl::Status st = WriteAtomically(path, file); !st.ok()) {
      return st;
    } else if (!quiet) {
      std::fprintf(stderr, "%s: saved the metadata as %s\n", meta->name.c_str(), path.c_str());
    }
  }
  return meta;
}

}  // namespace

int RunDownload(int argc, char** argv) {
  TransferArgs args;
  if (int rc = ParseTransferArgs("download", argc, argv, false, &args); rc >= 0) return rc;
  if (args.help) {
    std::fputs(kDownloadUsage, stdout);
    return 0;
  }
  absl::StatusOr<engine::Metainfo> meta =
      engine::IsMagnetUri(args.torrent) ? MetainfoFromMagnet(&args) : LoadTorrent(args.torrent);
  if (!meta.ok()) {
    if (absl::IsCancelled(meta.status())) {
      Fail("download", meta.status().message());
      return 128 + (args.stop_signal == SIGTERM ? SIGTERM : SIGINT);
    }
    return Fail("download", meta.status().message());
  }
  std::error_code ec;
  std::filesystem::create_directories(args.dir, ec);
  if (ec) return Fail("download", absl::StrCat("cannot create ", args.dir, ": ", ec.message()));
  std::vector<bool> files_wanted, files_needed;
  if (absl::Status st = SelectFiles(*meta, args.only, &files_wanted, &files_needed); !st.ok()) {
    return Fail("download", st.message());
  }
  absl::StatusOr<engine::Bitfield> have =
      ExistingPieces(*meta, args.dir, RecheckThreads(args), args.quiet(), files_needed);
  if (!have.ok()) return Fail("download", have.status().message());
  if (args.preallocate && !have->all()) {
    absl::StatusOr<std::unique_ptr<io::FileStore>> store =
        io::FileStore::Open(args.dir, *meta, io::OpenMode::kCreate, files_needed);
    if (!store.ok()) return Fail("download", store.status().message());
    if (absl::Status st = io::PreallocateFiles(**store); !st.ok()) {
      return Fail("download", st.message());
    }
  }
  // The DHT and local discovery may still find peers, except for a private torrent; web seeds
  // (BEP 19) are a source too.
  const bool web_seeds = args.session.web_seeds && !meta->web_seeds.empty();
  if (meta->trackers.empty() && args.peers.empty() && !have->all() && !web_seeds &&
      (meta->is_private || (!args.session.dht && !args.session.local_discovery))) {
    return Fail("download", "the torrent has no trackers; give peers with --peer HOST:PORT");
  }
  const int rc = RunTransfer("download", args, *meta, *have, args.seed, files_wanted);
  if (rc == 0 && !args.quiet()) {
    const int64_t bytes =
        files_wanted.empty() ? meta->total_length
                             : engine::PieceBytes(*meta, engine::WantedPieces(*meta, files_wanted));
    std::fprintf(stderr, "%s: complete, %s verified in %s\n", meta->name.c_str(),
                 HumanBytes(static_cast<double>(bytes)).c_str(),
                 (std::filesystem::path(args.dir) / meta->name).c_str());
  }
  return rc;
}

int RunSeed(int argc, char** argv) {
  TransferArgs args;
  if (int rc = ParseTransferArgs("seed", argc, argv, true, &args); rc >= 0) return rc;
  if (args.help) {
    std::fputs(kSeedUsage, stdout);
    return 0;
  }
  absl::StatusOr<engine::Metainfo> meta = LoadTorrent(args.torrent);
  if (!meta.ok()) return Fail("seed", meta.status().message());
  absl::StatusOr<std::unique_ptr<io::FileStore>> store =
      io::FileStore::Open(args.dir, *meta, io::OpenMode::kExisting);
  if (!store.ok()) return Fail("seed", store.status().message());
  absl::StatusOr<engine::Bitfield> have = io::CheckExistingData(**store, RecheckThreads(args));
  store->reset();
  if (!have.ok()) return Fail("seed", have.status().message());
  if (!have->all()) {
    return Fail("seed", absl::StrCat("data in ", args.dir, " does not match the torrent: ",
                                     meta->num_pieces() - have->count(), " of ", meta->num_pieces(),
                                     " pieces missing or corrupt"));
  }
  return RunTransfer("seed", args, *meta, *have, /*seed_after=*/true);
}

}  // namespace torrenty::tools
