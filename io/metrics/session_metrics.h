// The metrics of `torrenty serve`: which families `/metrics` shows and how they are filled.
//
// The session fills plain snapshot structs and calls RenderSessionMetrics. Live counting on the
// hot path goes through ShardInstruments (one per shard, written only by that shard's thread) and
// SessionInstruments (written only by the coordinator); at scrape time their Snapshot() fills the
// structs. Every per-shard metric is shown twice: summed over shards as `torrenty_<name>`, and
// per shard as `torrenty_shard_<name>{shard="N"}` (different names, so a sum() over one family
// never counts anything twice).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "io/metrics/exposition.h"
#include "io/metrics/instruments.h"

namespace torrenty::io::metrics {

// Label state="..." of torrenty_peers: every connection is in exactly one.
enum class PeerState : int {
  kConnecting = 0,  // outgoing connect under way
  kHandshaking,     // connected, BitTorrent handshake not yet complete
  kActive,          // piece data may flow: one side is interested and unchoked
  kIdle,            // handshaken, nothing may flow
};
inline constexpr int kPeerStateCount = 4;

// Label result="..." of torrenty_announces_total: how each tracker request ended.
enum class AnnounceResult : int {
  kSuccess = 0,      // a valid response with an interval
  kTrackerFailure,   // the tracker answered with a failure reason
  kTimeout,          // no answer in time (HTTP timeout, BEP 15 retransmissions exhausted)
  kNetworkError,     // DNS, connect, TLS or HTTP status errors
  kInvalidResponse,  // an answer that does not parse
};
inline constexpr int kAnnounceResultCount = 5;

// Label state="..." of torrenty_torrents. Same order and values as Transmission's status
// (io::rpc::TorrentStatus), so a status converts with a static_cast.
enum class TorrentState : int {
  kStopped = 0,
  kCheckWait,
  kChecking,
  kDownloadWait,
  kDownloading,
  kSeedWait,
  kSeeding,
};
inline constexpr int kTorrentStateCount = 7;

std::string_view LabelValue(PeerState state);
std::string_view LabelValue(AnnounceResult result);
std::string_view LabelValue(TorrentState state);

// Disk operation latency, submission to completion: 10 µs to 1.31 s in 18 doubling buckets,
// observed in nanoseconds.
const HistogramBuckets& DiskLatencyBuckets();

// One shard's numbers at the moment of a scrape.
struct ShardSnapshot {
  // Counters (totals since the session started).
  uint64_t payload_received_bytes = 0;   // piece data received from peers
  uint64_t payload_sent_bytes = 0;       // piece data sent to peers
  uint64_t protocol_received_bytes = 0;  // everything else on peer connections: handshakes,
  uint64_t protocol_sent_bytes = 0;      // message headers, bitfields, requests, keep-alives
  uint64_t pieces_verified = 0;          // pieces whose SHA-1 matched
  uint64_t pieces_failed = 0;            // pieces whose SHA-1 did not match
  uint64_t ring_submissions = 0;         // SQEs submitted to the shard's ring
  uint64_t ring_completions = 0;         // CQEs reaped from it
  uint64_t file_evictions = 0;           // descriptors the file pool closed to make room
  // Gauges.
  int64_t hash_queue_depth = 0;  // pieces handed to the hash pool, result not yet back
  int64_t disk_queue_depth = 0;  // disk operations submitted, not yet completed
  int64_t open_files = 0;        // descriptors of torrent files in the shards' file pools
  int64_t receive_buffer_bytes = 0;  // peer connections' receive buffers
  std::array<int64_t, kPeerStateCount> peers{};  // indexed by PeerState
  // In seconds, with DiskLatencyBuckets()' bounds.
  HistogramSnapshot disk_latency = EmptySnapshot(DiskLatencyBuckets());
};

// The whole session at the moment of a scrape.
struct SessionSnapshot {
  std::vector<ShardSnapshot> shards;                       // shards[i] is shard="i"
  std::array<uint64_t, kAnnounceResultCount> announces{};  // indexed by AnnounceResult
  std::array<int64_t, kTorrentStateCount> torrents{};      // indexed by TorrentState
};

// The live instruments of one shard. Only that shard's thread writes them; the scraper calls
// Snapshot() from its own thread. Cache-line aligned so two shards' blocks never share a line.
struct alignas(64) ShardInstruments {
  ShardCounter payload_received_bytes;
  ShardCounter payload_sent_bytes;
  ShardCounter protocol_received_bytes;
  ShardCounter protocol_sent_bytes;
  ShardCounter pieces_verified;
  ShardCounter pieces_failed;
  ShardCounter ring_submissions;
  ShardCounter ring_completions;
  ShardCounter file_evictions;
  ShardGauge hash_queue_depth;
  ShardGauge disk_queue_depth;
  ShardGauge open_files;
  ShardGauge receive_buffer_bytes;
  std::array<ShardGauge, kPeerStateCount> peers;
  ShardHistogram disk_latency{DiskLatencyBuckets()};  // Observe(nanoseconds)

  ShardGauge& peers_in(PeerState s) { return peers[static_cast<int>(s)]; }
  void Snapshot(ShardSnapshot* out) const;
};

// The coordinator's live instruments; only the coordinator's thread writes them.
struct alignas(64) SessionInstruments {
  std::array<ShardCounter, kAnnounceResultCount> announces;
  std::array<ShardGauge, kTorrentStateCount> torrents;

  ShardCounter& announces_with(AnnounceResult r) { return announces[static_cast<int>(r)]; }
  ShardGauge& torrents_in(TorrentState s) { return torrents[static_cast<int>(s)]; }
  // Fills the announces and torrents of `out`; leaves its shards alone.
  void Snapshot(SessionSnapshot* out) const;
};

// The shards added up: counters, gauges and histogram buckets summed. InvalidArgument if their
// disk latency histograms have different buckets.
[[nodiscard]] absl::StatusOr<ShardSnapshot> SumShards(absl::Span<const ShardSnapshot> shards);

// The body of a `/metrics` answer (Content-Type kContentType).
[[nodiscard]] absl::StatusOr<std::string> RenderSessionMetrics(const SessionSnapshot& session);

// Snapshots every shard (shards[i] is shard="i") and the coordinator, then renders. Callable from
// any thread while the owners keep writing.
[[nodiscard]] absl::StatusOr<std::string> ScrapeSessionMetrics(
    absl::Span<const ShardInstruments* const> shards, const SessionInstruments& session);

}  // namespace torrenty::io::metrics
