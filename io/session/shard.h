// One shard: a thread with its own io_uring ring, listening socket and peer connections, driving
// an engine::Torrent for each torrent it has peers of. A torrent with no peers on a shard costs
// the shard nothing but a map entry: its engine::Torrent and disk queue are made on the first
// connection and dropped when the torrent stops. Blocks never leave the shard whose socket
// received them.
#pragma once

#include <linux/time_types.h>
#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/base/rate_limiter.h"
#include "engine/torrent/torrent.h"
#include "io/disk/disk_io.h"
#include "io/disk/hash_pool.h"
#include "io/metrics/session_metrics.h"
#include "io/ring/ring.h"
#include "io/session/mailbox.h"
#include "io/session/messages.h"
#include "io/session/read_cache.h"
#include "io/session/receive_buffer_budget.h"
#include "io/session/session_torrent.h"
#include "io/session/shared_piece_memory.h"
#include "io/tracker/http_fetcher.h"

namespace torrenty::io {

// What every shard of a session shares; fixed before the shards start.
struct ShardEnv {
  int shards = 1;
  HashPool* hash_pool = nullptr;
  SharedPieceMemory* piece_memory = nullptr;
  ReceiveBufferBudget* receive_budget = nullptr;
  Mailbox<CoordinatorMessage>* coordinator = nullptr;
  std::vector<Mailbox<ShardMessage>*> inboxes;  // every shard's, by index
  bool log_verbose = false;  // connect/close lines are worth sending to the coordinator
  uint16_t port = 0;         // 0: shard 0 picks one (6881-6889, else ephemeral)
  bool port_explicit = false;
  // --bind: listen on and dial from this address only (its port is unused).
  engine::PeerAddress bind_address{};
  bool bind_given = false;
  int64_t read_cache_bytes = 32 << 20;  // over all shards
  int max_open_files = 512;             // over all shards
  // BEP 19 web seeds (--no-web-seeds clears it) and their cap per torrent, bytes/s (0: none).
  bool web_seeds = true;
  int64_t web_seed_max_rate = 0;
};

class Shard {
 public:
  Shard(int index, ShardEnv* env);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Creates the ring and the listening socket (shard 0 first: it picks the port the others share).
  [[nodiscard]] absl::Status Init();
  // Runs until a kStop has been handled and every connection and disk operation has finished.
  absl::Status Loop();
  Mailbox<ShardMessage>& inbox() { return inbox_; }
  uint16_t port() const { return port_; }
  // Written only by this shard's thread; any thread may snapshot it.
  const metrics::ShardInstruments& metrics() const { return metrics_; }

 private:
  struct ShardTorrent;
  struct Conn;

  // Torrents
  ShardTorrent* Instance(SessionTorrent* t);
  void Deactivate(TorrentId id);
  void MaybeRelease(ShardTorrent& st);
  void Drain(ShardTorrent& st);
  void DrainAll();
  void Execute(ShardTorrent& st, engine::Action& a);
  void Log(TorrentId id, std::string line, bool verbose = false);
  void ReportOutcome(TorrentId id, engine::PeerAddress address, PeerOutcome outcome);
  void Publish(ShardTorrent& st);
  void ReportPexPeers(ShardTorrent& st);
  void CountPayload(ShardTorrent& st);
  void CountProtocol();
  void CountPeers();

  // Loop
  engine::Instant AfterTurn(engine::Instant now);
  void OnInbox(int32_t res, uint32_t flags);
  void BeginStop();
  bool Finished(engine::Instant now) const;
  absl::Status Listen();

  // Sockets
  Conn* NewConn(int fd, engine::PeerAddress address, bool outgoing);
  void Dial(ShardTorrent& st, const engine::PeerAddress& address);
  void OnConnect(Conn& c, int32_t res);
  void OnAccept(int32_t res, uint32_t flags);
  void StartPeer(Conn& c, engine::Instant now);
  bool AttachIncoming(Conn& c, engine::Instant now);
  void ArmRecv(Conn& c);
  void OnRecv(Conn& c, int32_t res);
  // False when the receive-buffer share of the piece memory has no room for the doubling.
  bool GrowRecvBuffer(Conn& c);
  void ResizeRecvBuffer(Conn& c, size_t cap);
  void StartSend(ShardTorrent& st, engine::PeerKey key);
  void OnSend(Conn& c, int32_t res);
  // Gives a block the engine sent (or dropped) back to the read cache, once no send of its
  // connection is in flight; then retries reads that waited for a free cache entry.
  void ReleaseBlock(engine::PeerKey key, uint64_t pin);
  void ReleaseDeferred(Conn& c);
  // Rate limits: bytes `c` may receive or send now, at most `want`; 0 parks it until its
  // tokens come (RetryThrottled re-arms it).
  size_t Admit(Conn& c, engine::Direction direction, size_t want);
  void RetryThrottled(engine::Instant now);
  void PeerGone(Conn& c, int32_t res, engine::Instant now);
  void CloseConn(Conn& c);
  void MaybeFree(Conn& c);
  void OnClose(Conn& c, int32_t res);

  // Web seeds (shard_webseed.cc): a torrent's are driven by shard id % shards.
  void MaybeStartWebSeeds(SessionTorrent* t);
  void OnWebEvent(int32_t res, uint32_t flags);
  void PollWebSeeds(ShardTorrent& st);
  void WebSeedLogs(ShardTorrent& st);

  // Disk and hashing
  void OnHashEvent(int32_t res, uint32_t flags);
  void PumpWrites(ShardTorrent& st);
  void OnDiskDone(ShardTorrent& st, uint64_t tag, absl::Status status, engine::PieceBuffer buffer);
  void PumpReads();

  const int index_;
  ShardEnv* const env_;
  std::unique_ptr<Ring> ring_;
  Mailbox<ShardMessage> inbox_;
  // Posts to the coordinator and the other shards wake them once per loop turn, not per message.
  WakeList wakes_;
  int hash_client_ = 0;
  int listen_fd_ = -1;
  uint16_t port_ = 0;

  // The torrents this shard may serve, by id and by info-hash (for incoming handshakes).
  absl::flat_hash_map<TorrentId, SessionTorrent*> known_;
  // Other shards' PEX peers of torrents not instantiated here yet.
  absl::flat_hash_map<TorrentId, std::vector<engine::pex::PexPeer>> pex_waiting_;
  absl::flat_hash_map<engine::InfoHash, SessionTorrent*> by_hash_;
  absl::flat_hash_map<TorrentId, std::unique_ptr<ShardTorrent>> instances_;

  absl::flat_hash_map<engine::PeerKey, std::unique_ptr<Conn>> conns_;
  engine::PeerKey next_key_ = 1;
  size_t accepted_max_ = 0;

  uint64_t inbox_evt_ = 0, hash_evt_ = 0;
  Completion inbox_c_, hash_c_, accept_c_;
  std::vector<ShardMessage> messages_;
  std::vector<HashResult> hash_results_;
  std::vector<engine::Action> actions_;

  // This shard's share of the session's rate limits (the coordinator re-splits them).
  engine::ShardRateLimiter limiter_;
  struct Throttled {
    engine::PeerKey key;
    engine::Direction direction;
  };
  std::deque<Throttled> throttled_;
  engine::Instant throttle_wake_{};

  // Made with the first torrent whose web seeds this shard drives.
  std::unique_ptr<HttpFetcher> web_fetcher_;
  uint64_t web_evt_ = 0;
  Completion web_c_;
  std::vector<HttpResult> web_results_;

  std::unique_ptr<ReadCache> cache_;
  std::deque<BlockRead> read_backlog_;
  bool reads_waiting_ = false;  // a pin came back while reads waited: AfterTurn pumps them

  // Read once per loop turn (Ring::RunOnce's on_wake): every event of a turn sees the same time.
  engine::Instant now_{};
  metrics::ShardInstruments metrics_;
  // This shard's share of the open torrent files: no lock between shards on the disk path.
  FilePool file_pool_;
  // Bytes the peer sockets moved, payload included.
  uint64_t wire_received_ = 0, wire_sent_ = 0;

  bool stopping_ = false;
  engine::Instant stop_deadline_{};
  engine::Instant last_publish_{};
  std::vector<ShardTorrent*> due_;  // AfterTurn's scratch
};

}  // namespace torrenty::io
