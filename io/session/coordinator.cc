#include "io/session/coordinator.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/text_escape.h"
#include "engine/metainfo/file_map.h"
#include "io/disk/file_store.h"
#include "io/session/torrent_checker.h"

namespace torrenty::io {
namespace {

using engine::Instant;

constexpr int kTickMs = 250;
// At a stop, wait at most this long for `stopped` announces and for shards to close peers.
constexpr int64_t kStopGraceMs = 3'000;
// A download with no peer asks its trackers again this often (they honour their min interval).
// Shards that know the torrent ask too; this covers a torrent no shard has a peer of.
constexpr int64_t kNeedPeersRepeatMs = 15'000;

Instant Now() {
  using namespace std::chrono;
  return Instant{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

int64_t VerifiedBytes(const engine::Metainfo& meta, const engine::Bitfield& have) {
  int64_t sum = 0;
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
    if (have.Get(p)) sum += meta.PieceSize(p);
  }
  return sum;
}

// The files a download of the wanted pieces writes to: every wanted file (zero-length ones too)
// and every file that shares a piece with one. Empty: all of them.
std::vector<bool> FilesNeeded(const TorrentEntry& e) {
  if (e.files_wanted.empty()) return {};
  std::vector<bool> needed = engine::FilesTouched(*e.meta, e.wanted);
  for (size_t i = 0; i < needed.size() && i < e.files_wanted.size(); ++i) {
    needed[i] = needed[i] || e.files_wanted[i];
  }
  return needed;
}

}  // namespace

bool TorrentEntry::done() const {
  if (wanted.size() == 0) return complete();
  const auto w = wanted.bytes();
  const auto h = have.bytes();
  for (size_t i = 0; i < w.size() && i < h.size(); ++i) {
    if (w[i] & ~h[i]) return false;
  }
  return true;
}

int64_t TorrentEntry::wanted_bytes() const {
  return wanted.size() == 0 ? meta->total_length : engine::PieceBytes(*meta, wanted);
}

int64_t TorrentEntry::left() const {
  if (wanted.size() == 0) return meta->total_length - verified_bytes;
  engine::Bitfield missing(wanted.size());
  for (uint32_t p = 0; p < wanted.size(); ++p) {
    if (wanted.Get(p) && !have.Get(p)) missing.Set(p);
  }
  return engine::PieceBytes(*meta, missing);
}

namespace {
// One counter of a running torrent summed over its shards (0 when it is not running).
template <typename T>
T SumOverShards(const SessionTorrent* shared, std::atomic<T> ShardTorrentCounters::*counter) {
  T sum = 0;
  if (shared == nullptr) return sum;
  for (int i = 0; i < shared->shards; ++i)
    sum += (shared->counters[i].*counter).load(std::memory_order_relaxed);
  return sum;
}
}  // namespace

int64_t TorrentEntry::downloaded() const {
  return downloaded_base + SumOverShards(shared.get(), &ShardTorrentCounters::downloaded);
}

int64_t TorrentEntry::uploaded() const {
  return uploaded_base + SumOverShards(shared.get(), &ShardTorrentCounters::uploaded);
}

uint32_t TorrentEntry::peers_connected() const {
  return SumOverShards(shared.get(), &ShardTorrentCounters::peers);
}

namespace {
engine::AnnounceScheduler::Config SchedulerConfig() {
  engine::AnnounceScheduler::Config c;
  absl::BitGen gen;
  c.seed = absl::Uniform<uint64_t>(gen);
  return c;
}
}  // namespace

Coordinator::Coordinator(CoordinatorEnv env)
    : env_(std::move(env)), scheduler_(SchedulerConfig()), rates_(env_.shards) {
  rate_usage_.resize(static_cast<size_t>(rates_.shards()));
  rates_.SetGlobalLimit(engine::Direction::kDown, env_.config->max_download_rate);
  rates_.SetGlobalLimit(engine::Direction::kUp, env_.config->max_upload_rate);
}

Coordinator::~Coordinator() {
  resume_writer_.reset();  // its callbacks post to inbox_
  checker_.reset();
  http_.reset();
  ring_.reset();
  // After the ring: their armed receives point into them.
  udp_.reset();
  dht_.reset();
  lsd_.reset();
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

absl::Status Coordinator::Init() {
  absl::StatusOr<std::unique_ptr<Ring>> r = Ring::Create(1024);
  if (!r.ok()) return r.status();
  ring_ = std::move(*r);
  if (inbox_.fd() < 0) return absl::ErrnoToStatus(errno, "eventfd");
  if (env_.config->handle_signals) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (env_.config->on_reload) sigaddset(&mask, SIGHUP);
    signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC);
    if (signal_fd_ < 0) return absl::ErrnoToStatus(errno, "signalfd");
  }
  inbox_c_ = MakeCompletion<&Coordinator::OnInbox>(this);
  timer_c_ = MakeCompletion<&Coordinator::OnTimer>(this);
  sig_c_ = MakeCompletion<&Coordinator::OnSignal>(this);
  http_c_ = MakeCompletion<&Coordinator::OnHttpEvent>(this);
  return absl::OkStatus();
}

// -------------------------------------------------------------------------------------------------
// Torrents

TorrentEntry* Coordinator::Find(TorrentId id) {
  auto it = torrents_.find(id);
  return it == torrents_.end() ? nullptr : it->second.get();
}

TorrentEntry* Coordinator::FindByHash(const engine::InfoHash& info_hash) {
  auto it = by_hash_.find(info_hash);
  return it == by_hash_.end() ? nullptr : Find(it->second);
}

absl::StatusOr<TorrentId> Coordinator::Add(AddTorrentParams params) {
  if (params.meta == nullptr) return absl::InvalidArgumentError("no metainfo");
  if (const TorrentEntry* e = FindByHash(params.meta->info_hash)) {
    return absl::AlreadyExistsError(absl::StrCat("torrent ", e->id, " has the same info-hash"));
  }
  auto e = std::make_unique<TorrentEntry>();
  TorrentEntry& t = *e;
  t.id = next_id_++;
  t.meta = std::move(params.meta);
  t.data_dir = std::move(params.data_dir);
  t.paused = params.paused;
  t.peers = std::move(params.peers);
  t.stop_session_when_complete = params.stop_session_when_complete;
  t.added_date = params.added_date != 0 ? params.added_date : UnixNow();
  t.have = engine::Bitfield(t.meta->num_pieces());
  t.super_seed = params.super_seed;
  if (!params.files_wanted.empty()) {
    params.files_wanted.resize(t.meta->files.size(), true);
    t.wanted = engine::WantedPieces(*t.meta, params.files_wanted);
    t.files_wanted = std::move(params.files_wanted);
  }
  t.fsync_c = Completion{[](void* ctx, int32_t res, uint32_t) {
                           auto* entry = static_cast<TorrentEntry*>(ctx);
                           // The entry outlives its fsyncs: Finish and removal wait for them.
                           if (--entry->fsyncs_pending == 0 && entry->shared)
                             entry->shared->store->CloseAllFds();
                           if (res < 0 && entry->error.empty())
                             entry->error = absl::StrCat("fsync: ", strerror(-res));
                           if (entry->fsyncs_pending == 0) {
                             for (auto& fn : std::exchange(entry->after_fsyncs, {})) fn();
                           }
                         },
                         &t};
  const TorrentId id = t.id;
  torrents_[id] = std::move(e);
  order_.push_back(id);
  t.queue_position = static_cast<int>(queue_.size());
  queue_.push_back(id);
  by_hash_[t.meta->info_hash] = id;
  if (params.have.has_value()) {
    t.have = std::move(*params.have);
    t.verified_bytes = VerifiedBytes(*t.meta, t.have);
    // An empty set claims nothing worth saving until a piece arrives.
    if (t.have.count() == 0) t.resume_saved_count = 0;
    t.state = TorrentEntry::State::kStopped;
    if (!t.paused) Admit(t);
  } else {
    Verify(id);
  }
  return id;
}

void Coordinator::Verify(TorrentId id) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  if (e->state == TorrentEntry::State::kRunning) {
    Stop(id, [this, id] { Verify(id); });
    return;
  }
  if (e->state != TorrentEntry::State::kStopped) return;
  if (e->resume_pending > 0) {
    e->verify_after_resume = true;  // OnResumeDone checks once the file is written
    return;
  }
  e->state = TorrentEntry::State::kChecking;
  if (!checker_) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    checker_ = std::make_unique<TorrentChecker>(2 * cores);
  }
  checker_->Check(e->meta, e->data_dir, ResumeWhere(*e), [this, id](CheckResult r) {
    auto shared = std::make_shared<CheckResult>(std::move(r));
    CoordinatorMessage m;
    m.type = CoordinatorMessage::Type::kCall;
    m.call = [this, id, shared] {
      TorrentEntry* t = Find(id);
      if (t == nullptr || t->state != TorrentEntry::State::kChecking) return;
      t->state = TorrentEntry::State::kStopped;
      if (!shared->note.empty()) Log(t, shared->note);
      if (!shared->have.ok()) {
        t->error = std::string(shared->have.status().message());
        Log(t, t->error);
        return;
      }
      t->have = std::move(*shared->have);
      t->verified_bytes = VerifiedBytes(*t->meta, t->have);
      if (!shared->resume_current && t->have.count() > 0) {
        // The next start trusts this instead of hashing everything again.
        SubmitResume(*t, /*live=*/false, /*optional=*/true);
      } else {
        t->resume_saved_count = t->have.count();
        t->resume_saved_live = false;
      }
      t->completed_event = t->done();
      t->error.clear();
      if (!t->paused && !stopping_) Admit(*t);
    };
    inbox_.Post(std::move(m));
  });
}

void Coordinator::SetFilesWanted(TorrentId id, std::vector<bool> files_wanted) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  files_wanted.resize(e->meta->files.size(), true);
  if (std::find(files_wanted.begin(), files_wanted.end(), false) == files_wanted.end()) {
    files_wanted.clear();
  }
  if (files_wanted == e->files_wanted) return;
  e->files_wanted = std::move(files_wanted);
  e->wanted = e->files_wanted.empty() ? engine::Bitfield()
                                      : engine::WantedPieces(*e->meta, e->files_wanted);
  if (e->state != TorrentEntry::State::kRunning && e->state != TorrentEntry::State::kStopping) {
    return;
  }
  Stop(id, [this, id] {
    TorrentEntry* t = Find(id);
    if (t != nullptr && !t->paused && t->state == TorrentEntry::State::kStopped && !stopping_) {
      Activate(*t);
    }
  });
}

void Coordinator::Start(TorrentId id) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  e->paused = false;
  if (e->state == TorrentEntry::State::kStopped && !stopping_ && !e->queued) {
    e->error.clear();
    if (e->finished && SeedLimitReached(*e, Now()) == engine::SeedStop::kRatioReached) {
      // Transmission's rule: a torrent started by hand past its ratio seeds on without one.
      e->seed_limits.ratio_mode = engine::SeedLimitMode::kUnlimited;
      Log(e, "started by hand past its seed ratio: seeding without a ratio limit");
    }
    e->finished = false;
    Admit(*e);
  }
}

void Coordinator::Activate(TorrentEntry& e) {
  const engine::Metainfo& meta = *e.meta;
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(
      e.data_dir, meta, e.complete() ? OpenMode::kExisting : OpenMode::kCreate, FilesNeeded(e),
      FdPolicy::kLazy);  // the shards open files through their pools
  if (!store.ok()) {
    OnTorrentError(e, std::string(store.status().message()), Now());
    return;
  }
  for (const std::string& w : (*store)->warnings()) Log(&e, w);
  e.shared = std::make_unique<SessionTorrent>(e.id, e.meta, env_.shards);
  SessionTorrent& s = *e.shared;
  s.data_dir = e.data_dir;
  s.store = std::move(*store);
  s.wanted = e.wanted;
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
    if (e.have.Get(p)) s.claims.MarkHave(p);
  }
  engine::TorrentConfig& cfg = s.engine_config;
  cfg.self_id = env_.self_id;
  cfg.listen_port = env_.port;
  cfg.pex = env_.config->pex;
  cfg.hash_on_arrival = env_.config->hash_on_arrival;
  cfg.hash_chunk_bytes = env_.config->hash_chunk_bytes;
  cfg.super_seed = e.super_seed.value_or(env_.config->super_seed);
  cfg.super_seed_counts = &s.super_seed_counts;
  // Piece-assembly memory budget (default 32 MiB) over all shards, whatever the piece length:
  // a piece larger than the budget is fetched alone (engine/piece_memory.h).
  cfg.pieces_in_flight_max = engine::PiecesInFlightMax(env_.piece_memory->budget(),
                                                       meta.piece_length, env_.shards);
  cfg.piece_memory = env_.piece_memory;
  e.state = TorrentEntry::State::kRunning;
  e.started = Now();
  e.last_rate = e.started;
  e.seeding_since = e.started;
  e.moving_since = e.started;
  e.last_down = e.downloaded_base;
  e.last_up = e.uploaded_base;
  e.completed_event = e.done();
  e.saves_resume = !e.complete();
  if (!meta.trackers.empty()) {
    engine::Announcer::Config acfg;
    acfg.info_hash = meta.info_hash;
    acfg.peer_id = env_.self_id;
    acfg.port = env_.port;
    absl::BitGen gen;
    e.announcer =
        std::make_unique<engine::Announcer>(acfg, meta.trackers, absl::Uniform<uint64_t>(gen));
    if (!EnsureTransports(*e.announcer)) {
      e.announcer.reset();
    } else {
      // A download without peers announces at once; seeds restored in bulk are spread.
      (void)scheduler_.AddTorrent(e.id, Now(), /*needs_peers=*/!e.done());
    }
  }
  e.pex_by_shard.assign(env_.inboxes.size(), {});
  for (Mailbox<ShardMessage>* inbox : env_.inboxes) {
    ShardMessage m;
    m.type = ShardMessage::Type::kActivate;
    m.id = e.id;
    m.torrent = &s;
    inbox->Post(std::move(m));
  }
  DistributePeers(e, e.peers);
  LsdAdd(e, Now());
  if (e.done() && e.stop_session_when_complete) {
    e.completed_event = true;  // nothing to download
    BeginStop(Now());
  }
}

void Coordinator::Stop(TorrentId id, std::function<void()> then) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  e->queued = false;
  e->force_start = false;
  if (e->state == TorrentEntry::State::kChecking) {
    e->state = TorrentEntry::State::kStopped;  // the check's result is dropped
  }
  if (e->state != TorrentEntry::State::kRunning) {
    if (e->state == TorrentEntry::State::kStopping) {
      if (then) {
        auto prev = std::move(e->after_stop);
        e->after_stop = [prev = std::move(prev), then = std::move(then)] {
          if (prev) prev();
          then();
        };
      }
      return;
    }
    if (then) then();
    return;
  }
  e->state = TorrentEntry::State::kStopping;
  LsdRemove(*e);
  e->after_stop = std::move(then);
  e->deactivations_pending = env_.shards;
  const Instant now = Now();
  if (e->announcer) {
    e->announcer->Stop(now);
    RequestAnnounce(*e, now);
    PollAnnouncers(now);
  }
  for (Mailbox<ShardMessage>* inbox : env_.inboxes) {
    ShardMessage m;
    m.type = ShardMessage::Type::kDeactivate;
    m.id = e->id;
    inbox->Post(std::move(m));
  }
}

void Coordinator::OnDeactivated(TorrentEntry& e) {
  if (--e.deactivations_pending > 0) return;
  e.downloaded_base = e.downloaded();
  e.uploaded_base = e.uploaded();
  // Every shard has let go, so nothing is written any more: the snapshot is exact.
  if (e.saves_resume && (e.have.count() != e.resume_saved_count || e.resume_saved_live)) {
    SubmitResume(e, /*live=*/false);
  }
  e.shared.reset();  // closes its files
  e.state = TorrentEntry::State::kStopped;
  std::function<void()> then = std::move(e.after_stop);
  e.after_stop = nullptr;
  if (then) then();
}

void Coordinator::Remove(TorrentId id, bool delete_data, std::function<void()> then) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) {
    if (then) then();
    return;
  }
  e->paused = true;
  e->download_limited = e->upload_limited = false;
  e->honors_session_limits = true;
  ApplyTorrentRateLimits(*e);
  Stop(id, [this, id, delete_data, then = std::move(then)] {
    TorrentEntry* t = Find(id);
    if (t == nullptr) return;
    if (t->fsyncs_pending > 0) {
      // fsyncs in flight point into the entry: remove it after the last one completes, from the
      // inbox, since that completion runs inside the entry.
      t->after_fsyncs.push_back([this, id, delete_data, then] {
        CoordinatorMessage m;
        m.type = CoordinatorMessage::Type::kCall;
        m.call = [this, id, delete_data, then] { Remove(id, delete_data, then); };
        inbox_.Post(std::move(m));
      });
      return;
    }
    if (delete_data) {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(t->data_dir) / t->meta->name, ec);
      if (ec) Log(t, absl::StrCat("removing data: ", ec.message()));
    }
    // Through the writer, so a save still queued for this torrent cannot bring the file back.
    const ResumeLocation in_data = ResumeLocation::InDataDir(t->data_dir);
    std::vector<ResumeLocation> drop;
    if (!env_.config->state_dir.empty()) drop.push_back(ResumeWhere(*t));
    if (delete_data || !env_.config->state_dir.empty()) drop.push_back(in_data);
    for (ResumeLocation& where : drop) {
      ResumeJob job;
      job.tag = t->id;
      job.meta = t->meta;
      job.where = std::move(where);
      job.remove = true;
      resume_writer().Submit(std::move(job));
    }
    Log(t, "removed", /*verbose=*/true);
    order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    RenumberQueue();
    by_hash_.erase(t->meta->info_hash);
    scheduler_.RemoveTorrent(id);
    torrents_.erase(id);
    if (then) then();
  });
}

void Coordinator::OnTorrentError(TorrentEntry& e, const std::string& message, Instant now) {
  if (e.error.empty()) e.error = message;
  if (env_.config->torrent_error_is_fatal) {
    // The error comes back from Run: one line, printed by the caller.
    if (fatal_.ok()) fatal_ = absl::InternalError(message);
    BeginStop(now);
    return;
  }
  Log(&e, message);
  e.paused = true;
  Stop(e.id);
}

void Coordinator::DistributePeers(TorrentEntry& e, const std::vector<engine::PeerAddress>& peers) {
  if (e.state != TorrentEntry::State::kRunning || peers.empty()) return;
  // Peers are spread over shards by address, so each is dialled by exactly one shard.
  const size_t n = env_.inboxes.size();
  std::vector<std::vector<engine::PeerAddress>> per_shard(n);
  for (const engine::PeerAddress& a : peers) per_shard[absl::HashOf(a) % n].push_back(a);
  for (size_t i = 0; i < n; ++i) {
    if (per_shard[i].empty()) continue;
    ShardMessage m;
    m.type = ShardMessage::Type::kPeers;
    m.id = e.id;
    m.peers = std::move(per_shard[i]);
    env_.inboxes[i]->Post(std::move(m));
  }
}

void Coordinator::OnHave(TorrentEntry& e, uint32_t piece, Instant now) {
  if (piece >= e.meta->num_pieces() || e.have.Get(piece)) return;
  e.have.Set(piece);
  e.verified_bytes += e.meta->PieceSize(piece);
  e.activity_date = UnixNow();
  if (!e.completed_event && e.done()) OnComplete(e, now);
}

void Coordinator::OnComplete(TorrentEntry& e, Instant now) {
  e.completed_event = true;
  e.done_date = UnixNow();
  e.seeding_since = now;
  if (e.announcer) {
    e.announcer->Completed(now);
    RequestAnnounce(e, now);
    PollAnnouncers(now);
  }
  // Make the data durable before reporting success: exit 0 means the bytes are on disk.
  if (e.shared && e.shared->store) {
    if (absl::Status st = e.shared->store->OpenAllFds(); !st.ok() && e.error.empty()) {
      e.error = std::string(st.message());
    }
    for (size_t i = 0; i < e.meta->files.size(); ++i) {
      const int fd = e.shared->store->fd(static_cast<uint32_t>(i));
      if (fd < 0) continue;
      ++e.fsyncs_pending;
      ring_->Fsync(fd, /*datasync=*/true, &e.fsync_c);
    }
    if (e.fsyncs_pending == 0) e.shared->store->CloseAllFds();
  }
  if (e.stop_session_when_complete) BeginStop(now);
}

void Coordinator::Log(const TorrentEntry* e, const std::string& line, bool verbose) {
  const SessionConfig& c = *env_.config;
  if (!c.on_log || c.verbosity == Verbosity::kQuiet) return;
  if (verbose && c.verbosity != Verbosity::kVerbose) return;
  // Every line may carry text from the network (tracker messages, peer errors): a newline in it
  // must not split the line, nor an escape sequence reach the terminal.
  if (e != nullptr && c.log_torrent_names) {
    c.on_log(engine::EscapeForTerminal(absl::StrCat(e->meta->name, ": ", line)));
  } else {
    c.on_log(engine::EscapeForTerminal(line));
  }
}

SessionProgress Coordinator::Progress(const TorrentEntry& e, Instant now) const {
  SessionProgress p;
  p.pieces_have = e.have.count();
  p.pieces_total = e.meta->num_pieces();
  p.verified_bytes = e.verified_bytes;
  p.total_bytes = e.meta->total_length;
  p.downloaded_payload = e.downloaded();
  p.uploaded_payload = e.uploaded();
  p.download_rate = e.down_rate;
  p.upload_rate = e.up_rate;
  p.peers = e.peers_connected();
  p.complete = e.done();
  p.elapsed_s = static_cast<double>(now.ms - start_.ms) / 1000.0;
  return p;
}

// -------------------------------------------------------------------------------------------------
// Loop

absl::Status Coordinator::Loop() {
  start_ = Now();
  ring_->Read(inbox_.fd(), &inbox_evt_, sizeof(inbox_evt_), 0, &inbox_c_);
  if (signal_fd_ >= 0) ring_->Read(signal_fd_, &sig_info_, sizeof(sig_info_), 0, &sig_c_);
  ArmTimer();
  Tick(Now());
  while (!(stopping_ && Finished(Now()))) {
    absl::StatusOr<int> n = ring_->RunOnce(kTickMs);
    if (!n.ok()) {
      if (fatal_.ok()) fatal_ = n.status();
      BeginStop(Now());
      break;
    }
  }
  return fatal_;
}

bool Coordinator::Finished(Instant now) const {
  if (shards_stopped_ < env_.shards) return false;
  for (const auto& [id, e] : torrents_) {
    if (e->fsyncs_pending > 0) return false;
    if (e->stop_announce_pending && now.ms < stop_deadline_.ms) return false;
  }
  return true;
}

void Coordinator::BeginStop(Instant now) {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = Instant{now.ms + kStopGraceMs};
  for (const auto& [id, e] : torrents_) {
    if (e->state != TorrentEntry::State::kRunning || !e->announcer) continue;
    e->announcer->Stop(now);
    RequestAnnounce(*e, now);
    // `stopped` waits for a `completed` still under way (within the grace period).
    if (e->announcer->stop_pending()) e->stop_announce_pending = true;
  }
  PollAnnouncers(now);
  for (Mailbox<ShardMessage>* inbox : env_.inboxes) {
    ShardMessage m;
    m.type = ShardMessage::Type::kStop;
    inbox->Post(std::move(m));
  }
}

absl::Status Coordinator::Finish() {
  // Haves and errors posted by shards just before they stopped.
  inbox_.Take(&messages_);
  const Instant now = Now();
  std::vector<CoordinatorMessage> last;
  last.swap(messages_);
  for (CoordinatorMessage& m : last) HandleMessage(m, now);
  for (TorrentId id : order_) {
    TorrentEntry& e = *torrents_[id];
    if (e.state != TorrentEntry::State::kRunning && e.state != TorrentEntry::State::kStopping)
      continue;
    if (e.done() && e.fsyncs_pending == 0 && e.shared && e.shared->store && e.done_date == 0) {
      // The last pieces were finished by shards as everything stopped: the loop is over, so
      // make them durable here.
      if (absl::Status st = e.shared->store->SyncData(); !st.ok() && fatal_.ok()) fatal_ = st;
      e.done_date = UnixNow();
    }
    if (env_.config->on_progress) env_.config->on_progress(e.id, Progress(e, now));
    // The loop has ended and every write has completed, so this snapshot is exact and the
    // next start can skip the recheck.
    if (e.saves_resume && (e.have.count() != e.resume_saved_count || e.resume_saved_live)) {
      SubmitResume(e, /*live=*/false);
    }
  }
  DhtSave(now);
  if (resume_writer_) {
    // Saves of what start-up checks found are worth a later recheck, not a stop that outlasts
    // systemd's timeout (10,000 of them take minutes of fsyncs).
    if (const size_t dropped = resume_writer_->DropOptional(); dropped > 0) {
      Log(nullptr, absl::StrCat("stopping: ", dropped,
                                " torrents checked this run keep no resume data; the next start "
                                "checks them again"));
    }
    // After a disk error the run has already failed with that error; a resume file that
    // cannot be written on the same full disk is expected (the old one stays valid).
    if (absl::Status st = resume_writer_->Flush(); !st.ok() && fatal_.ok()) {
      Log(nullptr, absl::StrCat("resume: ", st.message()));
    }
  }
  return fatal_;
}

void Coordinator::ArmTimer() {
  timer_ts_.tv_sec = 0;
  timer_ts_.tv_nsec = kTickMs * 1'000'000LL;
  ring_->Timeout(&timer_ts_, &timer_c_);
}

void Coordinator::OnTimer(int32_t, uint32_t) {
  Tick(Now());
  ArmTimer();
}

void Coordinator::Tick(Instant now) {
  RebalanceRates(now);
  if (now.ms - last_tick_.ms >= 1000) {
    last_tick_ = now;
    if (env_.config->on_tick && !stopping_) env_.config->on_tick();
    for (TorrentId id : order_) {
      TorrentEntry& e = *torrents_[id];
      if (e.state != TorrentEntry::State::kRunning) continue;
      const double dt = static_cast<double>(now.ms - e.last_rate.ms) / 1000.0;
      if (dt > 0.5) {
        const int64_t down = e.downloaded(), up = e.uploaded();
        e.down_rate = static_cast<double>(down - e.last_down) / dt;
        e.up_rate = static_cast<double>(up - e.last_up) / dt;
        if (down != e.last_down || up != e.last_up) e.activity_date = UnixNow();
        if (up != e.last_up) e.seeding_since = now;
        if (down != e.last_down || up != e.last_up) e.moving_since = now;
        e.last_down = down;
        e.last_up = up;
        e.last_rate = now;
      }
      if (env_.config->on_progress) env_.config->on_progress(e.id, Progress(e, now));
      if (!stopping_ && CheckSeedLimits(e, now)) continue;
      MaybeSaveResume(e, now);
      if (e.announcer && !stopping_ && !e.done() && e.peers_connected() == 0 &&
          now.ms - e.need_peers_at.ms >= kNeedPeersRepeatMs) {
        e.need_peers_at = now;
        e.announcer->NeedPeers(now);
      }
      if (!stopping_) {
        const std::string line = e.outcomes.UnreachableLine(e.peers_connected());
        if (!line.empty()) Log(&e, line);
      }
    }
    if (!stopping_) RunQueue();
  }
  DhtTick(now);
  if (lsd_ && !stopping_) lsd_->Tick(now);
  PollAnnouncers(now);
}

void Coordinator::OnInbox(int32_t, uint32_t) {
  inbox_.Take(&messages_);
  const Instant now = Now();
  std::vector<CoordinatorMessage> batch;
  batch.swap(messages_);
  for (CoordinatorMessage& m : batch) HandleMessage(m, now);
  ring_->Read(inbox_.fd(), &inbox_evt_, sizeof(inbox_evt_), 0, &inbox_c_);
}

void Coordinator::HandleMessage(CoordinatorMessage& m, Instant now) {
  using Type = CoordinatorMessage::Type;
  if (m.type == Type::kCall) {
    m.call();
    return;
  }
  if (m.type == Type::kShardStopped) {
    ++shards_stopped_;
    if (m.session_wide) {
      if (fatal_.ok()) fatal_ = absl::InternalError(m.text);
      BeginStop(now);
    }
    return;
  }
  if (m.type == Type::kRequestStop) {
    if (!stopping_) Log(nullptr, "stopping on request");
    stop_requested_ = true;
    BeginStop(now);
    return;
  }
  TorrentEntry* e = m.id != 0 ? Find(m.id) : nullptr;
  switch (m.type) {
    case Type::kHave:
      if (e != nullptr) OnHave(*e, m.piece, now);
      break;
    case Type::kNeedPeers:
      if (e != nullptr && e->announcer && !stopping_) e->announcer->NeedPeers(now);
      break;
    case Type::kLog:
      Log(e, m.text, /*verbose=*/m.session_wide);
      break;
    case Type::kFatal:
      if (e != nullptr) OnTorrentError(*e, m.text, now);
      break;
    case Type::kRateUsage:
      if (m.shard >= 0 && static_cast<size_t>(m.shard) < rate_usage_.size()) {
        rate_usage_[static_cast<size_t>(m.shard)] = std::move(m.usage);
      }
      break;
    case Type::kPeerOutcome:
      if (e != nullptr) e->outcomes.Record(m.address, m.outcome);
      break;
    case Type::kPexPeers:
      if (e != nullptr) RelayPexPeers(*e, m.shard, std::move(m.pex_peers));
      break;
    case Type::kDeactivated:
      if (e != nullptr && e->state == TorrentEntry::State::kStopping) OnDeactivated(*e);
      break;
    default:
      break;
  }
}

void Coordinator::OnSignal(int32_t res, uint32_t) {
  if (res > 0 && sig_info_.ssi_signo == SIGHUP) {
    Log(nullptr, "reloading on SIGHUP", /*verbose=*/true);
    env_.config->on_reload();
  } else if (res > 0) {
    Log(nullptr, absl::StrCat("stopping on ", strsignal(static_cast<int>(sig_info_.ssi_signo))));
    stop_signo_ = static_cast<int>(sig_info_.ssi_signo);
    stop_requested_ = true;
    BeginStop(Now());
  }
  if (res <= 0 || !stopping_) ring_->Read(signal_fd_, &sig_info_, sizeof(sig_info_), 0, &sig_c_);
}

}  // namespace torrenty::io
