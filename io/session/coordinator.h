// The coordinator of a session: one thread (the one calling Session::Run) with its own ring,
// which owns every torrent's state that is not per shard: trackers and announces, the verified
// piece set, completion and fsync, resume data, progress, starting and stopping torrents, signals,
// and the answers to RPC calls. It never touches a peer or a block; shards send it per-piece and
// per-peer-list events through its mailbox.
#pragma once

#include <linux/time_types.h>
#include <sys/signalfd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/rate_limiter.h"
#include "engine/session/seed_limits.h"
#include "engine/session/torrent_queue.h"
#include "engine/tracker/announce_scheduler.h"
#include "engine/tracker/announcer.h"
#include "io/dht/dht_driver.h"
#include "io/disk/hash_pool.h"
#include "io/disk/resume_writer.h"
#include "io/lsd/lsd_service.h"
#include "io/metrics/session_metrics.h"
#include "io/ring/ring.h"
#include "io/session/mailbox.h"
#include "io/session/messages.h"
#include "io/session/peer_outcomes.h"
#include "io/session/session_config.h"
#include "io/session/session_torrent.h"
#include "io/session/shared_piece_memory.h"
#include "io/tracker/http_fetcher.h"
#include "io/tracker/udp_tracker_transport.h"

namespace torrenty::io {

class TorrentChecker;

// A torrent as the coordinator keeps it, whether running, stopped or being checked.
struct TorrentEntry {
  enum class State { kChecking, kStopped, kRunning, kStopping };
  TorrentId id = 0;
  std::shared_ptr<const engine::Metainfo> meta;
  std::string data_dir;
  State state = State::kStopped;
  bool paused = false;  // the user stopped it; stays stopped across restarts
  bool stop_session_when_complete = false;
  engine::Bitfield have;
  int64_t verified_bytes = 0;
  std::vector<engine::PeerAddress> peers;  // dialled at every start
  // Shared with the shards while running (recreated at every start, so no claim survives).
  std::unique_ptr<SessionTorrent> shared;
  std::unique_ptr<engine::Announcer> announcer;
  // Resume data: saved (through the session's one writer) only when pieces were gained, so an
  // idle torrent costs no write.
  bool saves_resume = false;
  uint32_t resume_saved_count = UINT32_MAX;  // pieces in the last snapshot submitted
  bool resume_saved_live = false;
  int resume_pending = 0;            // snapshots submitted, not yet reported done
  bool verify_after_resume = false;  // a check waits for them (it reads the file)
  engine::Instant last_resume_save{};
  PeerOutcomes outcomes;
  // Each shard's connected peers as it last reported them for ut_pex (coordinator_pex.cc).
  std::vector<std::vector<engine::pex::PexPeer>> pex_by_shard;
  int deactivations_pending = 0;
  std::function<void()> after_stop;  // runs once every shard has let go
  bool completed_event = false;
  int fsyncs_pending = 0;
  Completion fsync_c;
  // Run once fsyncs_pending is back to 0: a removal waits for the fsyncs that point into it.
  std::vector<std::function<void()>> after_fsyncs;
  bool stop_announce_pending = false;
  bool announce_in_flight = false;  // granted by the scheduler, answer not back yet
  std::string error;                // local error (disk), shown by the RPC
  std::string tracker_error;
  // The last announce answer, for the RPC's trackerStats.
  bool announced = false;
  bool last_announce_ok = false;
  int64_t last_announce_time = 0;  // unix seconds
  int last_announce_peers = 0;
  int seeders = -1, leechers = -1;
  // Transfer totals of earlier runs; the shards' counters start from 0 at every start.
  int64_t downloaded_base = 0, uploaded_base = 0;
  int64_t last_down = 0, last_up = 0;
  engine::Instant last_rate{};
  double down_rate = 0, up_rate = 0;
  int64_t added_date = 0, done_date = 0, activity_date = 0;
  // Speed limits as torrent-set gives them (bytes/s); each applies while its flag is set.
  int64_t download_limit = 0, upload_limit = 0;
  bool download_limited = false, upload_limited = false;
  bool honors_session_limits = true;  // rpc-spec honorsSessionLimits
  // BEP 16 (torrent-set superSeed); unset: the session's default. Applied at the next start.
  std::optional<bool> super_seed;
  engine::Instant started{};
  engine::Instant need_peers_at{};

  int64_t downloaded() const;
  int64_t uploaded() const;
  uint32_t peers_connected() const;
  bool complete() const { return have.all(); }
  // File selection: one flag per file (empty = all wanted) and the pieces they need.
  std::vector<bool> files_wanted;
  engine::Bitfield wanted;  // empty = every piece
  // Every wanted piece is had: the download is finished (complete() when all files are wanted).
  bool done() const;
  int64_t wanted_bytes() const;  // Transmission's sizeWhenDone
  int64_t left() const;          // wanted bytes not yet verified: announce `left`, leftUntilDone
  // Queueing and seed limits (coordinator_limits.cc).
  bool queued = false;       // wants to run, waits for a queue slot: no shard instance, no announce
  bool force_start = false;  // torrent-start-now: runs beside the queue
  bool finished = false;     // stopped by its seed ratio or idle limit
  int queue_position = 0;
  engine::TorrentSeedLimits seed_limits;
  engine::Instant seeding_since{};  // the last payload upload, or when seeding began
  engine::Instant moving_since{};   // the last payload in or out, or the start
};

struct CoordinatorEnv {
  SessionConfig* config = nullptr;
  int shards = 1;
  std::vector<Mailbox<ShardMessage>*> inboxes;
  SharedPieceMemory* piece_memory = nullptr;
  engine::PeerId self_id{};
  uint16_t port = 0;
};

class Coordinator {
 public:
  explicit Coordinator(CoordinatorEnv env);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  [[nodiscard]] absl::Status Init();
  // Runs until the session stops and every shard has ended its loop (they get kStop from here).
  absl::Status Loop();
  // After the shards' threads have joined: last haves, last fsyncs, resume data.
  absl::Status Finish();

  Mailbox<CoordinatorMessage>& inbox() { return inbox_; }
  void set_port(uint16_t port) { env_.port = port; }
  // Before Loop: replaces config.on_progress.
  void set_on_progress(std::function<void(TorrentId, const SessionProgress&)> fn) {
    env_.config->on_progress = std::move(fn);
  }
  int stop_signal() const { return stop_signo_; }
  bool stop_requested() const { return stop_requested_; }

  // Coordinator thread (or before Loop): adds a torrent and starts it unless paused.
  absl::StatusOr<TorrentId> Add(AddTorrentParams params);
  // Coordinator thread.
  TorrentEntry* Find(TorrentId id);
  TorrentEntry* FindByHash(const engine::InfoHash& info_hash);
  const std::vector<TorrentId>& order() const { return order_; }
  // Every torrent in queue order (TorrentEntry::queue_position is the index).
  const std::vector<TorrentId>& queue() const { return queue_; }
  void Start(TorrentId id);
  void Stop(TorrentId id, std::function<void()> then = nullptr);
  void Remove(TorrentId id, bool delete_data, std::function<void()> then = nullptr);
  void Verify(TorrentId id);
  // File selection (flags per metainfo file; empty = all). A running torrent restarts on its
  // shards, whose engines take the wanted pieces only when they start.
  void SetFilesWanted(TorrentId id, std::vector<bool> files_wanted);
  // BEP 16 for one torrent (torrent-set superSeed); a running torrent restarts likewise.
  void SetSuperSeed(TorrentId id, bool on);
  SessionProgress Progress(const TorrentEntry& e, engine::Instant now) const;
  // Rate limits in bytes/s (0 = unlimited): the session's, and a torrent's from its
  // download/upload limit fields. The shards hold their new shares within a tick.
  void SetGlobalRateLimit(engine::Direction direction, int64_t rate);
  void ApplyTorrentRateLimits(const TorrentEntry& e);
  // Queueing and seed limits (coordinator_limits.cc). Coordinator thread, or before Loop.
  void SetLimits(const engine::SessionSeedLimits& seed, const engine::QueueLimits& queue);
  void StartNow(TorrentId id);
  void MoveInQueue(const std::vector<TorrentId>& ids, engine::QueueMove how);
  void SetQueuePosition(TorrentId id, int position);
  // Whether e, if stopped, would stop again at once because of its seed limits.
  engine::SeedStop SeedLimitReached(const TorrentEntry& e, engine::Instant now) const;
  // Written only by the coordinator's thread; any thread may snapshot it.
  const metrics::SessionInstruments& metrics() const { return metrics_; }
  // Coordinator thread: recounts the torrents by state into metrics() (done per scrape, so the
  // coordinator keeps no count in step with every state change).
  void CountTorrents();

 private:
  void Activate(TorrentEntry& e);
  // Starts e now if its queue has room, else marks it queued (RunQueue starts it later).
  void Admit(TorrentEntry& e);
  void RunQueue();
  void RenumberQueue();
  // True if e reached a seed limit and is stopping.
  bool CheckSeedLimits(TorrentEntry& e, engine::Instant now);
  void OnDeactivated(TorrentEntry& e);
  void OnHave(TorrentEntry& e, uint32_t piece, engine::Instant now);
  void OnComplete(TorrentEntry& e, engine::Instant now);
  void OnTorrentError(TorrentEntry& e, const std::string& message, engine::Instant now);
  void Log(const TorrentEntry* e, const std::string& line, bool verbose = false);
  void DistributePeers(TorrentEntry& e, const std::vector<engine::PeerAddress>& peers);
  void BeginStop(engine::Instant now);
  bool Finished(engine::Instant now) const;

  void ArmTimer();
  void OnTimer(int32_t res, uint32_t flags);
  void Tick(engine::Instant now);
  void OnInbox(int32_t res, uint32_t flags);
  void OnSignal(int32_t res, uint32_t flags);
  void HandleMessage(CoordinatorMessage& m, engine::Instant now);

  // Announces
  bool EnsureTransports(const engine::Announcer& a);
  void PollAnnouncers(engine::Instant now);
  // Asks the session-wide scheduler for a slot when e's announcer is due.
  void RequestAnnounce(TorrentEntry& e, engine::Instant now);
  void SendAnnounce(TorrentEntry& e, const std::string& host, engine::Instant now);
  void AnnounceDone(const std::string& host, TorrentEntry* e);
  void OnHttpEvent(int32_t res, uint32_t flags);
  void OnUdpResult(uint64_t id, absl::StatusOr<engine::AnnounceResponse> result);
  void OnAnnounceResponse(TorrentEntry& e, absl::StatusOr<engine::AnnounceResponse> resp,
                          engine::Instant now);
  void MaybeSaveResume(TorrentEntry& e, engine::Instant now);
  // BEP 14 local discovery (coordinator_lsd.cc): the socket opens with the first public torrent.
  void LsdAdd(TorrentEntry& e, engine::Instant now);
  void LsdRemove(TorrentEntry& e);
  void OnLsdPeer(uint64_t torrent, engine::PeerAddress peer);
  // BEP 11: what one shard reports goes to every other shard of the torrent.
  void RelayPexPeers(TorrentEntry& e, int shard, std::vector<engine::pex::PexPeer> peers);
  // Rates: re-splits the limits over the shards from what they used (coordinator_rates.cc).
  void RebalanceRates(engine::Instant now);
  ResumeLocation ResumeWhere(const TorrentEntry& e) const;
  // `optional`: a snapshot of a check, which a stop may drop (ResumeJob::optional).
  void SubmitResume(TorrentEntry& e, bool live, bool optional = false);
  void OnResumeDone(TorrentId id, bool ok, const std::string& error);
  ResumeWriter& resume_writer();
  // DHT (coordinator_dht.cc): get_peers and announce_peer for every running public torrent.
  void DhtTick(engine::Instant now);
  void DhtSave(engine::Instant now);

  CoordinatorEnv env_;
  std::unique_ptr<Ring> ring_;
  Mailbox<CoordinatorMessage> inbox_;
  std::unique_ptr<TorrentChecker> checker_;
  std::unique_ptr<ResumeWriter> resume_writer_;  // made at the first save
  absl::flat_hash_map<TorrentId, std::unique_ptr<TorrentEntry>> torrents_;
  std::vector<TorrentId> order_;  // in the order they were added
  std::vector<TorrentId> queue_;  // in queue order (queuePosition)
  engine::QueueLimits queue_limits_;
  engine::SessionSeedLimits seed_limits_;
  // So that adding one of 10,000 torrents is not a walk over all the others.
  absl::flat_hash_map<engine::InfoHash, TorrentId> by_hash_;
  TorrentId next_id_ = 1;

  std::unique_ptr<HttpFetcher> http_;
  std::unique_ptr<UdpTrackerTransport> udp_;
  std::unique_ptr<LsdService> lsd_;
  bool lsd_failed_ = false;  // no multicast here: tried once, logged, not retried
  bool in_poll_ = false;
  // Announce request ids are per Announcer; the transports are shared, so they get session ids.
  struct PendingRequest {
    TorrentId torrent;
    uint64_t local_id;
    std::string host;  // the scheduler's key, released when the answer comes
  };
  engine::AnnounceScheduler scheduler_;
  std::vector<engine::AnnounceScheduler::Grant> grants_;
  absl::flat_hash_map<uint64_t, PendingRequest> requests_;
  uint64_t next_request_ = 1;

  int signal_fd_ = -1;
  signalfd_siginfo sig_info_{};
  int stop_signo_ = 0;
  uint64_t inbox_evt_ = 0, http_evt_ = 0;
  Completion inbox_c_, timer_c_, sig_c_, http_c_;
  __kernel_timespec timer_ts_{};
  std::vector<CoordinatorMessage> messages_;
  std::vector<HttpResult> http_results_;

  bool stopping_ = false;
  bool stop_requested_ = false;
  engine::Instant stop_deadline_{};
  int shards_stopped_ = 0;
  absl::Status fatal_;
  engine::Instant last_tick_{}, start_{};
  metrics::SessionInstruments metrics_;

  engine::RateAllocator rates_;
  // The shards' latest kRateUsage reports, by shard.
  std::vector<engine::ShardUsage> rate_usage_;
  bool rates_sent_ = false;  // the shards hold shares that a lifted limit must clear
  engine::Instant last_rebalance_{};

  std::unique_ptr<DhtDriver> dht_;
  bool dht_failed_ = false;
  engine::Instant dht_saved_{};
  absl::flat_hash_map<TorrentId, engine::Instant> dht_next_;  // next get_peers per torrent
};

}  // namespace torrenty::io
