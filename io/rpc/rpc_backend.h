// What the RPC server asks of the session. The RPC thread calls these; the session answers from
// its own state without waiting on disk or network, so an RPC never stalls behind I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace torrenty::io::rpc {

// Transmission's tr_torrent_activity values (rpc-spec "status").
enum class TorrentStatus : int {
  kStopped = 0,
  kCheckWait = 1,
  kCheck = 2,
  kDownloadWait = 3,
  kDownload = 4,
  kSeedWait = 5,
  kSeed = 6,
};

struct FileView {
  std::string name;  // "<torrent name>/<path>" for multi-file torrents, as Transmission shows it
  int64_t length = 0;
  int64_t bytes_completed = 0;
  bool wanted = true;
  int priority = 0;  // -1 low, 0 normal, 1 high
};

struct TrackerView {
  int id = 0;
  int tier = 0;
  std::string announce;
  std::string host;  // scheme://host:port
  bool has_announced = false;
  bool last_announce_succeeded = false;
  std::string last_announce_result;
  int64_t last_announce_time = 0;  // unix seconds, 0 = never
  int last_announce_peer_count = 0;
  int64_t next_announce_time = 0;  // unix seconds
  int seeder_count = -1;           // -1 = unknown
  int leecher_count = -1;
};

struct PeerView {
  std::string address;
  int port = 0;
  std::string client_name;
  bool is_incoming = false;
  double progress = 0;  // 0..1
  int64_t rate_to_client = 0;
  int64_t rate_to_peer = 0;
};

struct TorrentView {
  int id = 0;  // stable for the life of the session, never reused
  std::string hash_string;  // 40 lowercase hex
  std::string name;
  TorrentStatus status = TorrentStatus::kStopped;
  std::string download_dir;
  int64_t total_size = 0;
  int64_t size_when_done = 0;    // bytes of wanted files
  int64_t left_until_done = 0;   // wanted bytes not yet verified
  int64_t have_valid = 0;        // verified bytes
  int64_t rate_download = 0;     // bytes/s
  int64_t rate_upload = 0;
  int64_t downloaded_ever = 0;
  int64_t uploaded_ever = 0;
  int64_t corrupt_ever = 0;
  int peers_connected = 0;
  int peers_sending_to_us = 0;
  int peers_getting_from_us = 0;
  int64_t eta = -1;  // seconds; -1 not available, -2 unknown
  int error = 0;     // 0 ok, 1 tracker warning, 2 tracker error, 3 local error
  std::string error_string;
  int64_t added_date = 0;  // unix seconds
  int64_t done_date = 0;
  int64_t activity_date = 0;
  int64_t piece_count = 0;
  int64_t piece_size = 0;
  bool is_private = false;
  bool is_finished = false;  // reached its seed limit
  std::string comment;
  std::string creator;
  int64_t date_created = 0;
  int queue_position = 0;
  // Per-torrent limits, as torrent-set sets them (KiB/s in the RPC, bytes/s here).
  int64_t download_limit = 0;
  bool download_limited = false;
  int64_t upload_limit = 0;
  bool upload_limited = false;
  bool honors_session_limits = true;
  bool super_seed = false;  // BEP 16 (a Torrenty extension: superSeed)
  double seed_ratio_limit = 0;
  int seed_ratio_mode = 0;  // 0 global, 1 this torrent's limit, 2 unlimited
  int64_t seed_idle_limit = 0;  // minutes
  int seed_idle_mode = 0;
  std::vector<FileView> files;
  std::vector<TrackerView> trackers;
  std::vector<PeerView> peers;
};

// Which parts of a TorrentView the caller needs; files, trackers and peers cost the most.
struct ViewFields {
  bool files = false;
  bool trackers = false;
  bool peers = false;
};

struct AddRequest {
  std::string metainfo;  // the .torrent bytes (torrent-add "metainfo", base64-decoded)
  std::string filename;  // or a path to a .torrent file on the server
  std::string download_dir;  // empty = the session's default
  bool paused = false;
  std::vector<int> files_unwanted;  // file indices
  std::optional<bool> super_seed;   // superSeed, a Torrenty extension; unset: serve's default
};

struct AddResult {
  int id = 0;
  std::string name;
  std::string hash_string;
  bool duplicate = false;  // already in the session: Transmission's "torrent-duplicate"
};

// torrent-set: every field is optional; unset fields keep their value.
struct TorrentSettings {
  std::optional<int64_t> download_limit;  // bytes/s
  std::optional<bool> download_limited;
  std::optional<int64_t> upload_limit;
  std::optional<bool> upload_limited;
  std::optional<bool> honors_session_limits;
  std::optional<double> seed_ratio_limit;
  std::optional<int> seed_ratio_mode;
  std::optional<int64_t> seed_idle_limit;
  std::optional<int> seed_idle_mode;
  std::vector<int> files_wanted;  // file indices
  std::vector<int> files_unwanted;
  std::optional<int> queue_position;
  std::optional<bool> super_seed;  // superSeed (Torrenty extension); restarts a running torrent
};

struct SessionSettings {
  // Transmission's defaults: the values are kept while a limit is off.
  int64_t speed_limit_down = 100 << 10;  // bytes/s
  bool speed_limit_down_enabled = false;
  int64_t speed_limit_up = 100 << 10;
  bool speed_limit_up_enabled = false;
  // Transmission's "turtle mode": while enabled these replace the limits above.
  int64_t alt_speed_down = 50 << 10;  // bytes/s
  int64_t alt_speed_up = 50 << 10;
  bool alt_speed_enabled = false;
  double seed_ratio_limit = 2.0;
  bool seed_ratio_limited = false;
  int64_t idle_seeding_limit = 30;  // minutes
  bool idle_seeding_limit_enabled = false;
  std::string download_dir;
  int peer_port = 0;
  int peer_limit_global = 200;
  int peer_limit_per_torrent = 50;
  int download_queue_size = 5;
  bool download_queue_enabled = false;
  int seed_queue_size = 10;
  bool seed_queue_enabled = false;
  int queue_stalled_minutes = 30;
  bool queue_stalled_enabled = false;
  // False: torrents added without an explicit "paused" start paused (transmission-remote
  // --start-paused sets this with session-set before it adds).
  bool start_added_torrents = true;
  std::string version;  // "0.1.0 (torrenty)"
};

// session-set: unset fields keep their value.
struct SessionSettingsUpdate {
  std::optional<int64_t> speed_limit_down;
  std::optional<bool> speed_limit_down_enabled;
  std::optional<int64_t> speed_limit_up;
  std::optional<bool> speed_limit_up_enabled;
  std::optional<int64_t> alt_speed_down;
  std::optional<int64_t> alt_speed_up;
  std::optional<bool> alt_speed_enabled;
  std::optional<double> seed_ratio_limit;
  std::optional<bool> seed_ratio_limited;
  std::optional<int64_t> idle_seeding_limit;
  std::optional<bool> idle_seeding_limit_enabled;
  std::optional<std::string> download_dir;
  std::optional<int> download_queue_size;
  std::optional<bool> download_queue_enabled;
  std::optional<int> seed_queue_size;
  std::optional<bool> seed_queue_enabled;
  std::optional<int> queue_stalled_minutes;
  std::optional<bool> queue_stalled_enabled;
  std::optional<bool> start_added_torrents;
};

struct TransferTotals {
  int64_t uploaded_bytes = 0;
  int64_t downloaded_bytes = 0;
  int64_t files_added = 0;
  int64_t session_count = 1;
  int64_t seconds_active = 0;
};

struct SessionStats {
  int active_torrent_count = 0;
  int paused_torrent_count = 0;
  int torrent_count = 0;
  int64_t download_speed = 0;  // bytes/s
  int64_t upload_speed = 0;
  TransferTotals current;
  TransferTotals cumulative;
};

// rpc-spec queue-move-top/up/down/bottom.
enum class QueueDirection { kTop, kUp, kDown, kBottom };

class RpcBackend {
 public:
  virtual ~RpcBackend() = default;
  // `ids` empty = every torrent. Unknown ids are skipped, as Transmission does.
  virtual std::vector<TorrentView> GetTorrents(const std::vector<int>& ids,
                                               const ViewFields& fields) = 0;
  // Ids of torrents removed since the session started (torrent-get "recently-active").
  virtual std::vector<int> RemovedIds() = 0;
  virtual absl::StatusOr<AddResult> AddTorrent(const AddRequest& request) = 0;
  virtual absl::Status StartTorrents(const std::vector<int>& ids) = 0;
  virtual absl::Status StopTorrents(const std::vector<int>& ids) = 0;
  // torrent-start-now: starts them whatever the queue says.
  virtual absl::Status StartTorrentsNow(const std::vector<int>& ids) { return StartTorrents(ids); }
  virtual absl::Status MoveInQueue(const std::vector<int>& ids, QueueDirection direction) {
    (void)ids;
    (void)direction;
    return absl::UnimplementedError("queues are not supported");
  }
  virtual absl::Status VerifyTorrents(const std::vector<int>& ids) = 0;
  virtual absl::Status RemoveTorrents(const std::vector<int>& ids, bool delete_local_data) = 0;
  virtual absl::Status SetTorrents(const std::vector<int>& ids,
                                   const TorrentSettings& settings) = 0;
  virtual SessionSettings GetSession() = 0;
  virtual absl::Status SetSession(const SessionSettingsUpdate& update) = 0;
  virtual SessionStats GetSessionStats() = 0;
  // The Prometheus text exposition served at /metrics.
  virtual std::string Metrics() = 0;
};

}  // namespace torrenty::io::rpc
