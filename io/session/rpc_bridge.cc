#include "io/session/rpc_bridge.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <future>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/base/text_escape.h"
#include "engine/metainfo/magnet.h"
#include "engine/torrent/metadata_fetch.h"
#include "io/disk/small_file.h"
#include "io/session/metadata_fetcher.h"

namespace torrenty::io {
namespace {

// Longer than any coordinator turn; only a stopped session misses it.
constexpr auto kCallTimeout = std::chrono::seconds(10);

std::string TrackerHost(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t end = url.find('/', scheme + 3);
  return url.substr(0, end);
}

engine::Instant Now() {
  using namespace std::chrono;
  return engine::Instant{
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

// Verified bytes of every file: one walk over pieces and files together.
std::vector<int64_t> FileBytesCompleted(const engine::Metainfo& meta,
                                        const engine::Bitfield& have) {
  std::vector<int64_t> done(meta.files.size(), 0);
  size_t f = 0;
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
    if (!have.Get(p)) continue;
    const int64_t begin = int64_t{p} * meta.piece_length;
    const int64_t end = begin + meta.PieceSize(p);
    while (f < meta.files.size() && meta.files[f].offset + meta.files[f].length <= begin) ++f;
    for (size_t g = f; g < meta.files.size() && meta.files[g].offset < end; ++g) {
      const int64_t lo = std::max(begin, meta.files[g].offset);
      const int64_t hi = std::min(end, meta.files[g].offset + meta.files[g].length);
      if (hi > lo) done[g] += hi - lo;
    }
  }
  return done;
}

// Sets the flags of the files the RPC numbers `indices` (it leaves out pad files).
absl::Status ApplyFileIndices(const engine::Metainfo& meta, const std::vector<int>& indices,
                              bool wanted, std::vector<bool>* flags) {
  if (indices.empty()) return absl::OkStatus();
  std::vector<size_t> shown;
  for (size_t i = 0; i < meta.files.size(); ++i) {
    if (!meta.files[i].pad) shown.push_back(i);
  }
  flags->resize(meta.files.size(), true);
  for (int index : indices) {
    if (index < 0 || static_cast<size_t>(index) >= shown.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("file index ", index, " out of range (", shown.size(), " files)"));
    }
    (*flags)[shown[static_cast<size_t>(index)]] = wanted;
  }
  return absl::OkStatus();
}

void ApplyLimits(const rpc::SessionSettings& s, Coordinator& c) {
  engine::SessionSeedLimits seed;
  seed.ratio_limited = s.seed_ratio_limited;
  seed.ratio_limit = s.seed_ratio_limit;
  seed.idle_limited = s.idle_seeding_limit_enabled;
  seed.idle_minutes = s.idle_seeding_limit;
  engine::QueueLimits queue;
  queue.download_enabled = s.download_queue_enabled;
  queue.download_size = s.download_queue_size;
  queue.seed_enabled = s.seed_queue_enabled;
  queue.seed_size = s.seed_queue_size;
  queue.stalled_enabled = s.queue_stalled_enabled;
  queue.stalled_minutes = s.queue_stalled_minutes;
  c.SetLimits(seed, queue);
  // Turtle mode replaces both limits while it is on, as in Transmission.
  const int64_t down = s.alt_speed_enabled          ? s.alt_speed_down
                       : s.speed_limit_down_enabled ? s.speed_limit_down
                                                    : 0;
  const int64_t up = s.alt_speed_enabled        ? s.alt_speed_up
                     : s.speed_limit_up_enabled ? s.speed_limit_up
                                                : 0;
  // A limit of 0 bytes/s would mean "unlimited" to the allocator; Transmission's 0 stops traffic,
  // which 1 byte/s comes close to.
  c.SetGlobalRateLimit(engine::Direction::kDown, s.alt_speed_enabled || s.speed_limit_down_enabled
                                                     ? std::max<int64_t>(down, 1)
                                                     : 0);
  c.SetGlobalRateLimit(engine::Direction::kUp, s.alt_speed_enabled || s.speed_limit_up_enabled
                                                   ? std::max<int64_t>(up, 1)
                                                   : 0);
}

}  // namespace

SessionRpc::SessionRpc(Session* session, Options options)
    : session_(session), options_(std::move(options)) {
  settings_.download_dir = options_.default_download_dir;
  settings_.version = "0.1.0 (torrenty)";
  if (options_.restore_settings) options_.restore_settings(&settings_);
  ApplyLimits(settings_, session_->coordinator());
  started_unix_ = static_cast<int64_t>(std::time(nullptr));
}

bool SessionRpc::OnCoordinator(std::function<void(Coordinator&)> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  session_->Call([fn = std::move(fn), done](Coordinator& c) {
    fn(c);
    done->set_value();
  });
  return f.wait_for(kCallTimeout) == std::future_status::ready;
}

rpc::TorrentView SessionRpc::View(const TorrentEntry& e, const rpc::ViewFields& fields,
                                  engine::Instant now) {
  (void)now;
  const engine::Metainfo& meta = *e.meta;
  rpc::TorrentView v;
  v.id = static_cast<int>(e.id);
  v.hash_string = engine::ToHex(meta.info_hash);
  v.name = meta.name;
  switch (e.state) {
    case TorrentEntry::State::kChecking:
      v.status = rpc::TorrentStatus::kCheck;
      break;
    case TorrentEntry::State::kRunning:
      v.status = e.done() ? rpc::TorrentStatus::kSeed : rpc::TorrentStatus::kDownload;
      break;
    case TorrentEntry::State::kStopped:
    case TorrentEntry::State::kStopping:
      v.status = rpc::TorrentStatus::kStopped;
      if (e.queued && e.state == TorrentEntry::State::kStopped) {
        v.status = e.done() ? rpc::TorrentStatus::kSeedWait : rpc::TorrentStatus::kDownloadWait;
      }
      break;
  }
  v.is_finished = e.finished;
  v.queue_position = e.queue_position;
  v.download_limit = e.download_limit;
  v.download_limited = e.download_limited;
  v.upload_limit = e.upload_limit;
  v.upload_limited = e.upload_limited;
  v.honors_session_limits = e.honors_session_limits;
  v.super_seed = e.super_seed.value_or(false);  // GetTorrents fills in the session's default
  v.seed_ratio_mode = static_cast<int>(e.seed_limits.ratio_mode);
  v.seed_ratio_limit = e.seed_limits.ratio_limit;
  v.seed_idle_mode = static_cast<int>(e.seed_limits.idle_mode);
  v.seed_idle_limit = e.seed_limits.idle_minutes;
  v.download_dir = e.data_dir;
  v.total_size = meta.payload_length();
  v.size_when_done = e.wanted_bytes();
  v.have_valid = e.verified_bytes;
  v.left_until_done = e.left();
  const bool running = e.state == TorrentEntry::State::kRunning;
  v.rate_download = running ? static_cast<int64_t>(e.down_rate) : 0;
  v.rate_upload = running ? static_cast<int64_t>(e.up_rate) : 0;
  v.downloaded_ever = e.downloaded();
  v.uploaded_ever = e.uploaded();
  v.peers_connected = static_cast<int>(e.peers_connected());
  if (e.done()) {
    v.eta = -1;
  } else if (v.rate_download > 0) {
    v.eta = v.left_until_done / v.rate_download;
  } else {
    v.eta = -2;
  }
  if (!e.error.empty()) {
    v.error = 3;
    v.error_string = e.error;
  } else if (!e.tracker_error.empty()) {
    v.error = 2;
    v.error_string = e.tracker_error;
  }
  v.added_date = e.added_date;
  v.done_date = e.done_date;
  v.activity_date = e.activity_date;
  v.piece_count = meta.num_pieces();
  v.piece_size = meta.piece_length;
  v.is_private = meta.is_private;
  v.comment = meta.comment;
  v.creator = meta.created_by;
  if (fields.files) {
    const std::vector<int64_t> done = FileBytesCompleted(meta, e.have);
    for (size_t i = 0; i < meta.files.size(); ++i) {
      if (meta.files[i].pad) continue;
      rpc::FileView f;
      f.name = meta.RelativePath(i);  // "name/dir/file", as Transmission lists it
      f.length = meta.files[i].length;
      f.bytes_completed = done[i];
      f.wanted = e.files_wanted.empty() || e.files_wanted[i];
      v.files.push_back(std::move(f));
    }
  }
  if (fields.trackers) {
    int id = 0;
    for (size_t tier = 0; tier < meta.trackers.size(); ++tier) {
      for (const std::string& url : meta.trackers[tier]) {
        rpc::TrackerView t;
        t.id = id++;
        t.tier = static_cast<int>(tier);
        t.announce = url;
        t.host = TrackerHost(url);
        t.has_announced = e.announced;
        t.last_announce_succeeded = e.last_announce_ok;
        t.last_announce_result = e.last_announce_ok ? "Success" : e.tracker_error;
        t.last_announce_time = e.last_announce_time;
        t.last_announce_peer_count = e.last_announce_peers;
        t.seeder_count = e.seeders;
        t.leecher_count = e.leechers;
        v.trackers.push_back(std::move(t));
      }
    }
  }
  return v;
}

std::vector<rpc::TorrentView> SessionRpc::GetTorrents(const std::vector<int>& ids,
                                                      const rpc::ViewFields& fields) {
  std::vector<rpc::TorrentView> out;
  OnCoordinator([&](Coordinator& c) {
    const engine::Instant now = Now();
    if (ids.empty()) {
      out.reserve(c.order().size());
      for (TorrentId id : c.order()) out.push_back(View(*c.Find(id), fields, now));
    }
    for (int id : ids) {
      if (id <= 0) continue;
      if (const TorrentEntry* e = c.Find(static_cast<TorrentId>(id))) {
        out.push_back(View(*e, fields, now));
      }
    }
    for (rpc::TorrentView& v : out) {
      const TorrentEntry* e = c.Find(static_cast<TorrentId>(v.id));
      if (e != nullptr && !e->super_seed.has_value()) v.super_seed = session_->config().super_seed;
    }
  });
  return out;
}

std::vector<int> SessionRpc::RemovedIds() {
  std::vector<int> out;
  OnCoordinator([&](Coordinator&) { out = removed_; });
  return out;
}

absl::StatusOr<rpc::AddResult> SessionRpc::AddTorrent(const rpc::AddRequest& request) {
  std::string bytes = request.metainfo;
  if (bytes.empty()) {
    if (request.filename.empty()) return absl::InvalidArgumentError("no metainfo or filename");
    if (engine::IsMagnetUri(request.filename)) return AddMagnet(request);
    absl::StatusOr<std::string> file = ReadSmallFile(request.filename, int64_t{64} << 20);
    if (!file.ok()) return file.status();
    bytes = std::move(*file);
  }
  return AddBytes(std::move(bytes), request, {});
}

SessionRpc::~SessionRpc() {
  magnet_stop_ = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(magnet_mu_);
    threads.swap(magnet_threads_);
  }
  for (std::thread& t : threads) t.join();
}

absl::StatusOr<rpc::AddResult> SessionRpc::AddMagnet(const rpc::AddRequest& request) {
  absl::StatusOr<engine::MagnetLink> link = engine::ParseMagnet(request.filename);
  if (!link.ok()) return link.status();
  const std::string hex = engine::ToHex(link->info_hash);
  std::optional<rpc::AddResult> existing;
  OnCoordinator([&](Coordinator& c) {
    if (const TorrentEntry* e = c.FindByHash(link->info_hash)) {
      existing = rpc::AddResult{static_cast<int>(e->id), e->meta->name, hex, true};
    }
  });
  if (existing) return *existing;
  std::vector<engine::PeerAddress> peers;
  for (const engine::MagnetPeer& p : link->peers) {
    in_addr a{};
    std::array<uint8_t, 16> a6;
    if (inet_pton(AF_INET, p.host.c_str(), &a) == 1) {
      peers.push_back(engine::PeerAddress{ntohl(a.s_addr), p.port});
    } else if (inet_pton(AF_INET6, p.host.c_str(), a6.data()) == 1) {
      peers.push_back(engine::PeerAddress::V6(a6, p.port));
    }
  }
  const std::string label = link->name.empty() ? hex : link->name;
  {
    std::lock_guard<std::mutex> lock(magnet_mu_);
    if (std::find(magnet_pending_.begin(), magnet_pending_.end(), hex) != magnet_pending_.end()) {
      return rpc::AddResult{0, label, hex, true};
    }
    if (magnet_pending_.size() >= 64) {
      return absl::ResourceExhaustedError("64 magnet links are already fetching metadata");
    }
    magnet_pending_.push_back(hex);
    magnet_threads_.emplace_back([this, link = *link, peers, request, hex, label] {
      auto log = [&](const std::string& line) {
        std::fprintf(stderr, "%s\n",
                     engine::EscapeForTerminal(absl::StrCat(label, ": ", line)).c_str());
      };
      MetadataFetchOptions opts;
      opts.info_hash = link.info_hash;
      opts.peers = peers;
      opts.trackers = link.trackers;
      opts.listen_port = session_->port();
      // A node of its own on any port, since the session's node holds the session's port; it
      // keeps no state file, which the session's node writes.
      opts.dht = session_->config().dht;
      opts.dht.state_file.clear();
      opts.watch_signals = false;
      opts.stop = &magnet_stop_;
      opts.on_log = log;
      size_t last_peers = SIZE_MAX;
      opts.on_progress = [&](size_t n, size_t) {
        if (n != last_peers) log(absl::StrCat("fetching metadata (", n, " peers)"));
        last_peers = n;
      };
      log("fetching metadata (0 peers)");
      absl::StatusOr<std::string> info = FetchMetadata(opts);
      if (info.ok() && !magnet_stop_) {
        absl::StatusOr<rpc::AddResult> added =
            AddBytes(engine::MakeTorrentFile(*info, link.trackers), request, peers);
        if (!added.ok()) log(absl::StrCat("not added: ", added.status().message()));
      } else if (!magnet_stop_) {
        log(absl::StrCat("metadata fetch failed: ", info.status().message()));
      }
      std::lock_guard<std::mutex> lock(magnet_mu_);
      magnet_pending_.erase(std::find(magnet_pending_.begin(), magnet_pending_.end(), hex));
    });
  }
  return rpc::AddResult{0, label, hex, false};
}

absl::StatusOr<rpc::AddResult> SessionRpc::AddBytes(std::string bytes,
                                                    const rpc::AddRequest& request,
                                                    const std::vector<engine::PeerAddress>& peers) {
  absl::StatusOr<engine::Metainfo> parsed = engine::ParseMetainfo(bytes);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid or corrupt torrent file: ", parsed.status().message()));
  }
  auto meta = std::make_shared<const engine::Metainfo>(std::move(*parsed));
  absl::StatusOr<rpc::AddResult> result = absl::UnavailableError("the session has stopped");
  OnCoordinator([&](Coordinator& c) {
    if (const TorrentEntry* e = c.FindByHash(meta->info_hash)) {
      result = rpc::AddResult{static_cast<int>(e->id), e->meta->name,
                              engine::ToHex(e->meta->info_hash), true};
      return;
    }
    AddTorrentParams params;
    params.meta = meta;
    params.data_dir = request.download_dir.empty() ? settings_.download_dir : request.download_dir;
    params.paused = request.paused;
    params.peers = peers;
    params.super_seed = request.super_seed;
    if (!request.files_unwanted.empty()) {
      absl::Status st =
          ApplyFileIndices(*meta, request.files_unwanted, false, &params.files_wanted);
      if (!st.ok()) {
        result = st;
        return;
      }
    }
    absl::StatusOr<TorrentId> id = c.Add(std::move(params));
    if (!id.ok()) {
      result = id.status();
      return;
    }
    if (options_.on_added) options_.on_added(c, *id, bytes);
    result =
        rpc::AddResult{static_cast<int>(*id), meta->name, engine::ToHex(meta->info_hash), false};
  });
  return result;
}

absl::Status SessionRpc::ForEachTorrent(const std::vector<int>& ids,
                                        const std::function<void(Coordinator&, TorrentId)>& fn) {
  const bool ok = OnCoordinator([&](Coordinator& c) {
    // A copy: fn may remove torrents from c.order().
    std::vector<TorrentId> targets(c.order());
    if (!ids.empty()) targets.assign(ids.begin(), ids.end());
    for (TorrentId id : targets) {
      if (c.Find(id) != nullptr) fn(c, id);
    }
  });
  return ok ? absl::OkStatus() : absl::UnavailableError("the session has stopped");
}

absl::Status SessionRpc::StartTorrents(const std::vector<int>& ids) {
  return ForEachTorrent(ids, [&](Coordinator& c, TorrentId id) {
    c.Start(id);
    if (options_.on_changed) options_.on_changed(c, id);
  });
}

absl::Status SessionRpc::StopTorrents(const std::vector<int>& ids) {
  return ForEachTorrent(ids, [&](Coordinator& c, TorrentId id) {
    c.Find(id)->paused = true;
    c.Stop(id);
    if (options_.on_changed) options_.on_changed(c, id);
  });
}

absl::Status SessionRpc::StartTorrentsNow(const std::vector<int>& ids) {
  const bool ok = OnCoordinator([&](Coordinator& c) {
    for (int id : ids) {
      if (id <= 0 || c.Find(static_cast<TorrentId>(id)) == nullptr) continue;
      c.StartNow(static_cast<TorrentId>(id));
      if (options_.on_changed) options_.on_changed(c, static_cast<TorrentId>(id));
    }
  });
  return ok ? absl::OkStatus() : absl::UnavailableError("the session has stopped");
}

absl::Status SessionRpc::MoveInQueue(const std::vector<int>& ids, rpc::QueueDirection direction) {
  const bool ok = OnCoordinator([&](Coordinator& c) {
    std::vector<TorrentId> targets;
    for (int id : ids) {
      if (id > 0) targets.push_back(static_cast<TorrentId>(id));
    }
    c.MoveInQueue(targets, static_cast<engine::QueueMove>(direction));
    // Every position after the first moved one may have changed.
    if (options_.on_changed) {
      for (TorrentId id : c.order()) options_.on_changed(c, id);
    }
  });
  return ok ? absl::OkStatus() : absl::UnavailableError("the session has stopped");
}

absl::Status SessionRpc::VerifyTorrents(const std::vector<int>& ids) {
  return ForEachTorrent(ids, [](Coordinator& c, TorrentId id) { c.Verify(id); });
}

absl::Status SessionRpc::RemoveTorrents(const std::vector<int>& ids, bool delete_local_data) {
  return ForEachTorrent(ids, [&](Coordinator& c, TorrentId id) {
    removed_.push_back(static_cast<int>(id));
    if (options_.on_removed) options_.on_removed(engine::ToHex(c.Find(id)->meta->info_hash));
    c.Remove(id, delete_local_data);
  });
}

absl::Status SessionRpc::SetTorrents(const std::vector<int>& ids,
                                     const rpc::TorrentSettings& settings) {
  const bool limits = settings.download_limit || settings.download_limited ||
                      settings.upload_limit || settings.upload_limited ||
                      settings.honors_session_limits || settings.seed_ratio_limit ||
                      settings.seed_ratio_mode || settings.seed_idle_limit ||
                      settings.seed_idle_mode || settings.queue_position || settings.super_seed;
  if (settings.files_wanted.empty() && settings.files_unwanted.empty() && !limits) {
    return absl::OkStatus();
  }
  absl::Status result = absl::OkStatus();
  const bool ok = OnCoordinator([&](Coordinator& c) {
    std::vector<TorrentId> targets(c.order());
    if (!ids.empty()) targets.assign(ids.begin(), ids.end());
    for (TorrentId id : targets) {
      TorrentEntry* e = c.Find(id);
      if (e == nullptr) continue;
      engine::TorrentSeedLimits& l = e->seed_limits;
      if (settings.seed_ratio_limit) l.ratio_limit = *settings.seed_ratio_limit;
      if (settings.seed_ratio_mode) {
        l.ratio_mode = static_cast<engine::SeedLimitMode>(*settings.seed_ratio_mode);
      }
      if (settings.seed_idle_limit) l.idle_minutes = *settings.seed_idle_limit;
      if (settings.seed_idle_mode) {
        l.idle_mode = static_cast<engine::SeedLimitMode>(*settings.seed_idle_mode);
      }
      if (settings.queue_position) c.SetQueuePosition(id, *settings.queue_position);
      if (settings.download_limit) e->download_limit = *settings.download_limit;
      if (settings.download_limited) e->download_limited = *settings.download_limited;
      if (settings.upload_limit) e->upload_limit = *settings.upload_limit;
      if (settings.upload_limited) e->upload_limited = *settings.upload_limited;
      if (settings.honors_session_limits) {
        e->honors_session_limits = *settings.honors_session_limits;
      }
      c.ApplyTorrentRateLimits(*e);
      if (settings.super_seed) c.SetSuperSeed(id, *settings.super_seed);
      if (settings.files_wanted.empty() && settings.files_unwanted.empty()) {
        if (options_.on_changed) {
          for (TorrentId t : settings.queue_position ? c.order() : std::vector<TorrentId>{id}) {
            options_.on_changed(c, t);
          }
        }
        continue;
      }
      std::vector<bool> flags = e->files_wanted;
      absl::Status st = ApplyFileIndices(*e->meta, settings.files_wanted, true, &flags);
      if (st.ok()) st = ApplyFileIndices(*e->meta, settings.files_unwanted, false, &flags);
      if (!st.ok()) {
        result = st;
        return;
      }
      c.SetFilesWanted(id, std::move(flags));
      if (options_.on_changed) options_.on_changed(c, id);
    }
  });
  if (!ok) return absl::UnavailableError("the session has stopped");
  return result;
}

rpc::SessionSettings SessionRpc::GetSession() {
  rpc::SessionSettings out;
  OnCoordinator([&](Coordinator&) {
    out = settings_;
    out.peer_port = session_->port();
  });
  return out;
}

absl::Status SessionRpc::SetSession(const rpc::SessionSettingsUpdate& update) {
  absl::Status result = absl::OkStatus();
  const bool ok = OnCoordinator([&](Coordinator& c) {
    rpc::SessionSettings& s = settings_;
    if (update.download_dir) s.download_dir = *update.download_dir;
    if (update.start_added_torrents) s.start_added_torrents = *update.start_added_torrents;
    if (update.seed_ratio_limit) s.seed_ratio_limit = *update.seed_ratio_limit;
    if (update.seed_ratio_limited) s.seed_ratio_limited = *update.seed_ratio_limited;
    if (update.idle_seeding_limit) s.idle_seeding_limit = *update.idle_seeding_limit;
    if (update.idle_seeding_limit_enabled) {
      s.idle_seeding_limit_enabled = *update.idle_seeding_limit_enabled;
    }
    if (update.download_queue_size) s.download_queue_size = *update.download_queue_size;
    if (update.download_queue_enabled) s.download_queue_enabled = *update.download_queue_enabled;
    if (update.seed_queue_size) s.seed_queue_size = *update.seed_queue_size;
    if (update.seed_queue_enabled) s.seed_queue_enabled = *update.seed_queue_enabled;
    if (update.queue_stalled_minutes) s.queue_stalled_minutes = *update.queue_stalled_minutes;
    if (update.queue_stalled_enabled) s.queue_stalled_enabled = *update.queue_stalled_enabled;
    if (update.speed_limit_down) s.speed_limit_down = *update.speed_limit_down;
    if (update.speed_limit_down_enabled)
      s.speed_limit_down_enabled = *update.speed_limit_down_enabled;
    if (update.speed_limit_up) s.speed_limit_up = *update.speed_limit_up;
    if (update.speed_limit_up_enabled) s.speed_limit_up_enabled = *update.speed_limit_up_enabled;
    if (update.alt_speed_down) s.alt_speed_down = *update.alt_speed_down;
    if (update.alt_speed_up) s.alt_speed_up = *update.alt_speed_up;
    if (update.alt_speed_enabled) s.alt_speed_enabled = *update.alt_speed_enabled;
    ApplyLimits(s, c);
    if (options_.on_session_changed) options_.on_session_changed(s);
  });
  if (!ok) return absl::UnavailableError("the session has stopped");
  return result;
}

rpc::SessionStats SessionRpc::GetSessionStats() {
  rpc::SessionStats s;
  OnCoordinator([&](Coordinator& c) {
    for (TorrentId id : c.order()) {
      const TorrentEntry& e = *c.Find(id);
      ++s.torrent_count;
      if (e.state == TorrentEntry::State::kRunning) {
        ++s.active_torrent_count;
        s.download_speed += static_cast<int64_t>(e.down_rate);
        s.upload_speed += static_cast<int64_t>(e.up_rate);
      } else {
        ++s.paused_torrent_count;
      }
      s.current.downloaded_bytes += e.downloaded();
      s.current.uploaded_bytes += e.uploaded();
    }
    s.current.files_added = s.torrent_count;
    s.current.seconds_active = static_cast<int64_t>(std::time(nullptr)) - started_unix_;
    s.cumulative = s.current;
  });
  return s;
}

std::string SessionRpc::Metrics() { return options_.metrics ? options_.metrics() : ""; }

}  // namespace torrenty::io
