// `torrenty serve`: one long-running session hosting many torrents, driven through a
// Transmission-compatible RPC (transmission-remote works against it) and scraped at /metrics.
// The torrent list lives under --state-dir, so a restart (also after kill -9) resumes it.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "io/disk/small_file.h"
#include "io/rpc/rpc_server.h"
#include "io/session/rpc_bridge.h"
#include "io/session/session.h"
#include "io/session/state_dir.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"
#include "tools/torrenty/session_flags.h"

namespace torrenty::tools {
namespace {

constexpr char kServeUsage[] =
    "usage: torrenty serve [options]\n"
    "\n"
    "Runs many torrents in one process, controlled through a Transmission-compatible RPC\n"
    "(transmission-remote HOST:PORT ...) and scraped by Prometheus at /metrics.\n"
    "\n"
    "options:\n"
    "  --state-dir DIR        torrent list and settings (default $XDG_STATE_HOME/torrenty or\n"
    "                         ~/.local/state/torrenty)\n"
    "  --download-dir DIR     where added torrents' data goes (default STATE-DIR/downloads)\n"
    "  --port N               peer port (default: first free of 6881-6889)\n"
    "  --bind ADDR            listen on and connect from this IPv4 or IPv6 address only\n"
    "  --dht-bootstrap HOST:PORT  DHT node to start from (repeatable; default: the public\n"
    "                         routers; IPv6 as [ADDR]:PORT); nodes are kept in STATE-DIR/dht.dat\n"
    "  --no-dht               do not use the DHT (private torrents never do)\n"
    "  --rpc-bind ADDR        RPC address (default 127.0.0.1; elsewhere needs --rpc-auth)\n"
    "  --rpc-port N           RPC port (default 9091; 0 = any free port, printed at start)\n"
    "  --rpc-auth USER:PASS   HTTP basic auth for the RPC and /metrics\n"
    "  --rpc-host NAME        another Host name the RPC accepts (repeatable)\n"
    "  --watch DIR            add every .torrent dropped here (renamed to .torrent.added);\n"
    "                         SIGHUP rescans at once\n"
    "  --threads N            shards, one io_uring ring each (default: one per CPU)\n"
    "  --max-open-files N     torrent files open at once, all torrents (default 512)\n"
    "  --max-download-rate R  session download limit, bytes/s (500K, 10M; 0 = none);\n"
    "  --max-upload-rate R    likewise for upload (session-set speed-limit-*, saved)\n"
    "  --hash-threads N       SHA-1 workers (default 2)\n"
    "  --no-lsd               no local peer discovery (BEP 14 multicast on the LAN)\n"
    "  --no-pex               no peer exchange (BEP 11) with connected peers\n"
    "  --super-seed           BEP 16 super-seeding for every complete torrent that has no\n"
    "                         superSeed of its own (torrent-add/torrent-set superSeed)\n"
    "  --no-web-seeds         ignore torrents' web seeds (BEP 19 url-list)\n"
    "  --web-seed-max-rate R  cap on each torrent's web-seed traffic, bytes/s (default 0 = none)\n"
    "  --piece-memory SIZE    memory for pieces being assembled, all torrents (default 32M)\n"
    "  --seed-ratio R         stop seeding a torrent once it uploaded R times its size\n"
    "                         (session-set seedRatioLimit; saved in the state dir)\n"
    "  -v, --verbose          also log every peer connect and close\n"
    "  -q, --quiet            log nothing\n";

struct ServeArgs {
  std::string state_dir;
  std::string download_dir;
  SessionFlags session;
  std::string rpc_bind = "127.0.0.1";
  uint16_t rpc_port = 9091;
  std::string rpc_user, rpc_pass;
  std::vector<std::string> rpc_hosts;
  std::string watch_dir;
  std::optional<double> seed_ratio;
  bool help = false;
};

std::string DefaultStateDir() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return absl::StrCat(xdg, "/torrenty");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return absl::StrCat(home, "/.local/state/torrenty");
  }
  return "/var/lib/torrenty";
}

int ParseServeArgs(int argc, char** argv, ServeArgs* out) {
  constexpr absl::string_view cmd = "serve";
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string value;
    bool missing = false;
    if (arg == "-h" || arg == "--help") {
      out->help = true;
      return -1;
    }
    if (TakeValue(argc, argv, &i, "--state-dir", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--state-dir needs a folder");
      out->state_dir = value;
    } else if (TakeValue(argc, argv, &i, "--download-dir", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--download-dir needs a folder");
      out->download_dir = value;
    } else if (TakeValue(argc, argv, &i, "--watch", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--watch needs a folder");
      out->watch_dir = value;
    } else if (const FlagParse f = TakeSessionFlag(cmd, argc, argv, &i, &out->session,
                                                   {.super_seed = true});
               f != FlagParse::kNotMine) {
      if (f == FlagParse::kBad) return 2;
    } else if (TakeValue(argc, argv, &i, "--rpc-port", &value, &missing)) {
      absl::StatusOr<uint16_t> port = ParsePort(value);
      if (missing || !port.ok())
        return UsageError(cmd, missing ? "--rpc-port needs a number" : port.status().message());
      out->rpc_port = *port;
    } else if (TakeValue(argc, argv, &i, "--rpc-bind", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--rpc-bind needs an address");
      out->rpc_bind = value;
    } else if (TakeValue(argc, argv, &i, "--rpc-auth", &value, &missing)) {
      const size_t colon = value.find(':');
      if (missing || colon == std::string::npos || colon == 0) {
        return UsageError(cmd, "--rpc-auth needs USER:PASS");
      }
      out->rpc_user = value.substr(0, colon);
      out->rpc_pass = value.substr(colon + 1);
    } else if (TakeValue(argc, argv, &i, "--rpc-host", &value, &missing)) {
      if (missing || value.empty()) return UsageError(cmd, "--rpc-host needs a host name");
      out->rpc_hosts.push_back(value);
    } else if (TakeValue(argc, argv, &i, "--seed-ratio", &value, &missing)) {
      double ratio = 0;
      if (missing || !absl::SimpleAtod(value, &ratio) || !(ratio >= 0 && ratio <= 1e9)) {
        return UsageError(cmd, absl::StrCat("--seed-ratio needs a number >= 0, got '", value, "'"));
      }
      out->seed_ratio = ratio;
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError(cmd, absl::StrCat("unknown option '", arg, "'"));
    } else {
      return UsageError(cmd, absl::StrCat("unexpected argument '", arg, "'"));
    }
  }
  if (out->state_dir.empty()) out->state_dir = DefaultStateDir();
  if (out->download_dir.empty()) out->download_dir = out->state_dir + "/downloads";
  // Saved records and RPC answers name folders; relative ones would change meaning with the
  // working directory of the next start.
  std::error_code ec;
  for (std::string* dir : {&out->state_dir, &out->download_dir, &out->watch_dir}) {
    if (!dir->empty()) *dir = std::filesystem::absolute(*dir, ec).lexically_normal().string();
  }
  return -1;
}

void LogLine(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

// Everything `serve` keeps between the coordinator's callbacks; they all run on its thread.
class Server {
 public:
  Server(const ServeArgs& args, io::Session* session, io::StateDir state)
      : args_(args), session_(session), state_(std::move(state)) {}

  // Saves the record of torrent `id` (after an add, a start or a stop) unless it is what was
  // last written: each save is an fsync on the coordinator thread, and with thousands of idle
  // torrents rewriting them all stalled the RPC for seconds.
  void SaveRecord(io::Coordinator& c, io::TorrentId id) {
    const io::TorrentEntry* e = c.Find(id);
    if (e == nullptr) return;
    engine::TorrentRecord r;
    r.download_dir = e->data_dir;
    r.paused = e->paused;
    r.added_date = e->added_date;
    r.done_date = e->done_date;
    r.downloaded = e->downloaded();
    r.uploaded = e->uploaded();
    for (size_t i = 0; i < e->files_wanted.size(); ++i) {
      if (!e->files_wanted[i]) r.files_unwanted.push_back(static_cast<uint32_t>(i));
    }
    r.finished = e->finished;
    r.queue_position = e->queue_position;
    r.seed_ratio_mode = static_cast<int64_t>(e->seed_limits.ratio_mode);
    r.seed_ratio_milli = std::llround(e->seed_limits.ratio_limit * 1000);
    r.seed_idle_mode = static_cast<int64_t>(e->seed_limits.idle_mode);
    r.seed_idle_minutes = e->seed_limits.idle_minutes;
    r.download_limit = e->download_limit;
    r.download_limited = e->download_limited;
    r.upload_limit = e->upload_limit;
    r.upload_limited = e->upload_limited;
    r.honors_session_limits = e->honors_session_limits;
    r.super_seed = e->super_seed;
    const Written now{r.paused, r.done_date, r.downloaded, r.uploaded, r.files_unwanted, Limits(r)};
    auto [it, inserted] = written_.try_emplace(id, now);
    if (!inserted && it->second == now) return;
    it->second = now;
    if (absl::Status st = state_.SaveRecord(engine::ToHex(e->meta->info_hash), r); !st.ok()) {
      Log(absl::StrCat("state: ", st.message()));
    }
  }

  void SaveAdded(io::Coordinator& c, io::TorrentId id, const std::string& metainfo) {
    const io::TorrentEntry* e = c.Find(id);
    if (e == nullptr) return;
    // The torrent file first: a record without its torrent is skipped at load.
    if (absl::Status st = state_.SaveTorrent(engine::ToHex(e->meta->info_hash), metainfo);
        !st.ok()) {
      Log(absl::StrCat("state: ", st.message()));
      return;
    }
    SaveRecord(c, id);
  }

  void Removed(const std::string& hex) { state_.Remove(hex); }

  // The saved session settings over the defaults, then --seed-ratio over both.
  void RestoreSettings(io::rpc::SessionSettings* s) {
    absl::StatusOr<std::optional<engine::SessionRecord>> saved = state_.LoadSettings();
    if (!saved.ok()) Log(absl::StrCat("state: ", saved.status().message(), " (using defaults)"));
    if (saved.ok() && saved->has_value()) {
      const engine::SessionRecord& r = **saved;
      if (!r.download_dir.empty()) s->download_dir = r.download_dir;
      s->start_added_torrents = r.start_added_torrents;
      s->seed_ratio_limited = r.seed_ratio_limited;
      s->seed_ratio_limit = static_cast<double>(r.seed_ratio_milli) / 1000;
      s->idle_seeding_limit_enabled = r.idle_seeding_limit_enabled;
      s->idle_seeding_limit = r.idle_seeding_minutes;
      s->download_queue_enabled = r.download_queue_enabled;
      s->download_queue_size = static_cast<int>(r.download_queue_size);
      s->seed_queue_enabled = r.seed_queue_enabled;
      s->seed_queue_size = static_cast<int>(r.seed_queue_size);
      s->queue_stalled_enabled = r.queue_stalled_enabled;
      s->queue_stalled_minutes = static_cast<int>(std::max<int64_t>(1, r.queue_stalled_minutes));
      s->speed_limit_down = r.speed_limit_down;
      s->speed_limit_down_enabled = r.speed_limit_down_enabled;
      s->speed_limit_up = r.speed_limit_up;
      s->speed_limit_up_enabled = r.speed_limit_up_enabled;
      s->alt_speed_down = r.alt_speed_down;
      s->alt_speed_up = r.alt_speed_up;
      s->alt_speed_enabled = r.alt_speed_enabled;
    }
    if (args_.seed_ratio) {
      s->seed_ratio_limited = true;
      s->seed_ratio_limit = *args_.seed_ratio;
    }
    if (args_.session.rates_given) {
      s->speed_limit_down_enabled = args_.session.max_download_rate > 0;
      if (s->speed_limit_down_enabled) s->speed_limit_down = args_.session.max_download_rate;
      s->speed_limit_up_enabled = args_.session.max_upload_rate > 0;
      if (s->speed_limit_up_enabled) s->speed_limit_up = args_.session.max_upload_rate;
    }
  }

  void SaveSettings(const io::rpc::SessionSettings& s) {
    engine::SessionRecord r;
    r.download_dir = s.download_dir;
    r.start_added_torrents = s.start_added_torrents;
    r.seed_ratio_limited = s.seed_ratio_limited;
    r.seed_ratio_milli = std::llround(s.seed_ratio_limit * 1000);
    r.idle_seeding_limit_enabled = s.idle_seeding_limit_enabled;
    r.idle_seeding_minutes = s.idle_seeding_limit;
    r.download_queue_enabled = s.download_queue_enabled;
    r.download_queue_size = s.download_queue_size;
    r.seed_queue_enabled = s.seed_queue_enabled;
    r.seed_queue_size = s.seed_queue_size;
    r.queue_stalled_enabled = s.queue_stalled_enabled;
    r.queue_stalled_minutes = s.queue_stalled_minutes;
    r.speed_limit_down = s.speed_limit_down;
    r.speed_limit_down_enabled = s.speed_limit_down_enabled;
    r.speed_limit_up = s.speed_limit_up;
    r.speed_limit_up_enabled = s.speed_limit_up_enabled;
    r.alt_speed_down = s.alt_speed_down;
    r.alt_speed_up = s.alt_speed_up;
    r.alt_speed_enabled = s.alt_speed_enabled;
    if (absl::Status st = state_.SaveSettings(r); !st.ok()) {
      Log(absl::StrCat("state: ", st.message()));
    }
  }

  // Adds every saved torrent; before the session runs.
  void LoadSaved() {
    std::vector<std::string> problems;
    std::vector<io::SavedTorrent> saved = state_.Load(&problems);
    for (const std::string& p : problems) Log(p);
    std::vector<std::pair<int64_t, io::TorrentId>> positions;
    for (io::SavedTorrent& s : saved) {
      absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(s.metainfo);
      if (!meta.ok()) {
        Log(absl::StrCat("skipping saved torrent ", s.hex, ": ", meta.status().message()));
        continue;
      }
      io::AddTorrentParams p;
      p.meta = std::make_shared<const engine::Metainfo>(std::move(*meta));
      p.data_dir = s.record.download_dir;
      p.paused = s.record.paused;
      p.added_date = s.record.added_date;
      if (!s.record.files_unwanted.empty()) {
        // Indices past the file list (a record from another torrent) are ignored.
        p.files_wanted.assign(p.meta->files.size(), true);
        for (uint32_t i : s.record.files_unwanted) {
          if (i < p.files_wanted.size()) p.files_wanted[i] = false;
        }
      }
      absl::StatusOr<io::TorrentId> id = session_->AddTorrent(std::move(p));
      if (!id.ok()) {
        Log(absl::StrCat("skipping saved torrent ", s.hex, ": ", id.status().message()));
        continue;
      }
      io::TorrentEntry* e = session_->coordinator().Find(*id);
      e->downloaded_base = s.record.downloaded;
      e->uploaded_base = s.record.uploaded;
      e->done_date = s.record.done_date;
      e->finished = s.record.finished;
      e->seed_limits.ratio_mode = static_cast<engine::SeedLimitMode>(s.record.seed_ratio_mode);
      e->seed_limits.ratio_limit = static_cast<double>(s.record.seed_ratio_milli) / 1000;
      e->seed_limits.idle_mode = static_cast<engine::SeedLimitMode>(s.record.seed_idle_mode);
      e->seed_limits.idle_minutes = s.record.seed_idle_minutes;
      e->download_limit = s.record.download_limit;
      e->download_limited = s.record.download_limited;
      e->upload_limit = s.record.upload_limit;
      e->upload_limited = s.record.upload_limited;
      e->honors_session_limits = s.record.honors_session_limits;
      e->super_seed = s.record.super_seed;
      session_->coordinator().ApplyTorrentRateLimits(*e);
      positions.emplace_back(s.record.queue_position, *id);
      written_[*id] = Written{s.record.paused,   s.record.done_date,      s.record.downloaded,
                              s.record.uploaded, s.record.files_unwanted, Limits(s.record)};
    }
    // The saved queue order: the queue file, else (state from before it existed) the records'
    // positions; either may have gaps (torrents removed since) or miss torrents (added after a
    // kill -9), which go after the others.
    absl::StatusOr<std::optional<std::vector<std::string>>> queue = state_.LoadQueue();
    if (!queue.ok()) Log(absl::StrCat("state: ", queue.status().message()));
    if (queue.ok() && queue->has_value()) {
      absl::flat_hash_map<std::string, int64_t> at;
      for (size_t i = 0; i < (*queue)->size(); ++i) at.emplace((**queue)[i], static_cast<int64_t>(i));
      for (auto& [pos, id] : positions) {
        auto it = at.find(engine::ToHex(session_->coordinator().Find(id)->meta->info_hash));
        pos = it != at.end() ? it->second : static_cast<int64_t>((*queue)->size()) + pos;
      }
    }
    std::sort(positions.begin(), positions.end());
    for (size_t i = 0; i < positions.size(); ++i) {
      session_->coordinator().SetQueuePosition(positions[i].second, static_cast<int>(i));
    }
    if (!saved.empty()) Log(absl::StrCat(saved.size(), " saved torrents loaded"));
    SaveQueue(session_->coordinator());
  }

  // Adds every *.torrent in the watch folder and renames it to *.torrent.added (Transmission's
  // convention), so it is added once; a file that fails to parse is renamed *.torrent.invalid.
  void ScanWatchDir(io::Coordinator& c) {
    if (args_.watch_dir.empty()) return;
    std::error_code ec;
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::directory_iterator(args_.watch_dir, ec)) {
      if (entry.path().extension() == ".torrent" && entry.is_regular_file(ec)) {
        found.push_back(entry.path());
      }
    }
    for (const std::filesystem::path& path : found) {
      absl::StatusOr<std::string> bytes = io::ReadSmallFile(path.string(), int64_t{64} << 20);
      absl::StatusOr<engine::Metainfo> meta =
          bytes.ok() ? engine::ParseMetainfo(*bytes)
                     : absl::StatusOr<engine::Metainfo>(bytes.status());
      std::string suffix = ".added";
      if (!meta.ok()) {
        Log(absl::StrCat("watch: ", path.string(), ": ", meta.status().message()));
        suffix = ".invalid";
      } else {
        io::AddTorrentParams p;
        p.meta = std::make_shared<const engine::Metainfo>(std::move(*meta));
        p.data_dir = args_.download_dir;
        absl::StatusOr<io::TorrentId> id = c.Add(std::move(p));
        if (id.ok()) {
          SaveAdded(c, *id, *bytes);
          Log(absl::StrCat("watch: added ", path.filename().string()));
        } else if (!absl::IsAlreadyExists(id.status())) {
          Log(absl::StrCat("watch: ", path.string(), ": ", id.status().message()));
        }
      }
      std::filesystem::rename(path, path.string() + suffix, ec);
      if (ec) Log(absl::StrCat("watch: cannot rename ", path.string(), ": ", ec.message()));
    }
  }

  void Tick(io::Coordinator& c) {
    // The watch folder every 2 s; SIGHUP scans at once.
    if (++ticks_ % 2 == 0) ScanWatchDir(c);
    // Records carry transfer totals: refresh them once a minute.
    if (ticks_ % 60 == 0) {
      for (io::TorrentId id : c.order()) SaveRecord(c, id);
    }
    SaveQueue(c);
  }

  void SaveAll(io::Coordinator& c) {
    for (io::TorrentId id : c.order()) SaveRecord(c, id);
    SaveQueue(c);
  }

  // Writes the queue file when the order changed: one write for any number of moves.
  void SaveQueue(io::Coordinator& c) {
    const std::vector<io::TorrentId>& order = c.queue();
    if (queue_saved_ && order == queue_written_) return;
    std::vector<std::string> hexes;
    hexes.reserve(order.size());
    for (io::TorrentId id : order) hexes.push_back(engine::ToHex(c.Find(id)->meta->info_hash));
    if (absl::Status st = state_.SaveQueue(hexes); !st.ok()) {
      Log(absl::StrCat("state: ", st.message()));
      return;
    }
    queue_written_ = order;
    queue_saved_ = true;
  }

  void Log(const std::string& line) {
    if (!args_.session.quiet()) LogLine(line);
  }

 private:
  // The parts of a record that change after it is first written.
  struct Written {
    bool paused = false;
    int64_t done_date = 0, downloaded = 0, uploaded = 0;
    std::vector<uint32_t> files_unwanted;
    std::array<int64_t, 11> limits{};  // Limits()
    friend bool operator==(const Written&, const Written&) = default;
  };
  static std::array<int64_t, 11> Limits(const engine::TorrentRecord& r) {
    // The queue position is left out: the queue file keeps the order (SaveQueue).
    const int64_t super_seed = r.super_seed.has_value() ? 1 + *r.super_seed : 0;
    return {r.finished,         super_seed,         r.seed_ratio_mode,  r.seed_ratio_milli,
            r.seed_idle_mode,   r.seed_idle_minutes, r.download_limit,  r.download_limited,
            r.upload_limit,     r.upload_limited,    r.honors_session_limits};
  }

  const ServeArgs& args_;
  io::Session* session_;
  io::StateDir state_;
  uint64_t ticks_ = 0;
  std::vector<io::TorrentId> queue_written_;
  bool queue_saved_ = false;
  absl::flat_hash_map<io::TorrentId, Written> written_;
};

}  // namespace

int RunServe(int argc, char** argv) {
  constexpr absl::string_view cmd = "serve";
  ServeArgs args;
  if (int rc = ParseServeArgs(argc, argv, &args); rc >= 0) return rc;
  if (args.help) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  absl::StatusOr<io::StateDir> state = io::StateDir::Open(args.state_dir);
  if (!state.ok()) return Fail(cmd, state.status().message());
  std::error_code ec;
  std::filesystem::create_directories(args.download_dir, ec);
  if (ec) return Fail(cmd, absl::StrCat("cannot create ", args.download_dir, ": ", ec.message()));
  if (!args.watch_dir.empty() && !std::filesystem::is_directory(args.watch_dir, ec)) {
    return Fail(cmd, absl::StrCat("--watch ", args.watch_dir, " is not a folder"));
  }

  io::SessionConfig config;
  args.session.ApplyTo(&config);
  config.log_torrent_names = true;
  config.state_dir = args.state_dir;
  config.dht = args.session.Dht(args.state_dir + "/dht.dat");
  config.on_log = LogLine;
  Server* server_ptr = nullptr;
  io::Session* session_ptr = nullptr;
  config.on_reload = [&] {
    if (server_ptr != nullptr) server_ptr->ScanWatchDir(session_ptr->coordinator());
  };
  config.on_tick = [&] {
    if (server_ptr != nullptr) server_ptr->Tick(session_ptr->coordinator());
  };
  config.on_torrent_changed = [&](io::TorrentId id) {
    if (server_ptr != nullptr) server_ptr->SaveRecord(session_ptr->coordinator(), id);
  };
  absl::StatusOr<std::unique_ptr<io::Session>> session = io::Session::Create(std::move(config));
  if (!session.ok()) return Fail(cmd, session.status().message());
  session_ptr = session->get();
  Server server(args, session_ptr, std::move(*state));
  server_ptr = &server;
  server.LoadSaved();

  io::SessionRpc::Options rpc_opts;
  rpc_opts.default_download_dir = args.download_dir;
  rpc_opts.on_added = [&](io::Coordinator& c, io::TorrentId id, const std::string& bytes) {
    server.SaveAdded(c, id, bytes);
  };
  rpc_opts.on_changed = [&](io::Coordinator& c, io::TorrentId id) { server.SaveRecord(c, id); };
  rpc_opts.on_removed = [&](const std::string& hex) { server.Removed(hex); };
  rpc_opts.restore_settings = [&](io::rpc::SessionSettings* s) { server.RestoreSettings(s); };
  rpc_opts.on_session_changed = [&](const io::rpc::SessionSettings& s) { server.SaveSettings(s); };
  rpc_opts.metrics = [session_ptr] {
    absl::StatusOr<std::string> text = session_ptr->Metrics();
    // A comment line keeps the answer valid exposition text that says what went wrong.
    return text.ok() ? *std::move(text)
                     : absl::StrCat("# metrics unavailable: ", text.status().message(), "\n");
  };
  io::SessionRpc backend(session_ptr, std::move(rpc_opts));

  io::rpc::RpcServerOptions ropts;
  ropts.bind_address = args.rpc_bind;
  ropts.port = args.rpc_port;
  ropts.username = args.rpc_user;
  ropts.password = args.rpc_pass;
  ropts.allowed_hosts = args.rpc_hosts;
  io::rpc::RpcServer rpc_server(&backend, ropts);
  if (absl::Status st = rpc_server.Start(); !st.ok()) return Fail(cmd, st.message());
  server.Log(absl::StrCat("serving: peers on port ", session_ptr->port(), " (",
                          session_ptr->threads(), " shards), RPC on ", args.rpc_bind, ":",
                          rpc_server.port(), ", state in ", args.state_dir));
  absl::Status st = session_ptr->Run();
  rpc_server.Stop();
  server.SaveAll(session_ptr->coordinator());
  if (!st.ok()) return Fail(cmd, st.message());
  // Stopped by a signal: the shell's convention, 128 + the signal number.
  const int sig = session_ptr->stop_signal();
  return sig == 0 ? 0 : 128 + sig;
}

}  // namespace torrenty::tools
