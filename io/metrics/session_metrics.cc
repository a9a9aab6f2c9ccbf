// The metric families of `torrenty serve` and their rendering from snapshots.
#include "io/metrics/session_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace torrenty::io::metrics {
namespace {

struct CounterDef {
  std::string_view name;  // after "torrenty_" or "torrenty_shard_"
  std::string_view help;
  uint64_t ShardSnapshot::*field;
};

constexpr CounterDef kCounters[] = {
    {"payload_received_bytes_total", "Piece data received from peers, in bytes.",
     &ShardSnapshot::payload_received_bytes},
    {"payload_sent_bytes_total", "Piece data sent to peers, in bytes.",
     &ShardSnapshot::payload_sent_bytes},
    {"protocol_received_bytes_total",
     "Peer-wire bytes received other than piece data (handshakes, message headers, control "
     "messages).",
     &ShardSnapshot::protocol_received_bytes},
    {"protocol_sent_bytes_total",
     "Peer-wire bytes sent other than piece data (handshakes, message headers, control messages).",
     &ShardSnapshot::protocol_sent_bytes},
    {"pieces_verified_total", "Pieces whose SHA-1 matched the metainfo.",
     &ShardSnapshot::pieces_verified},
    {"pieces_failed_total", "Pieces whose SHA-1 did not match the metainfo.",
     &ShardSnapshot::pieces_failed},
    {"ring_submissions_total", "Submission queue entries submitted to io_uring.",
     &ShardSnapshot::ring_submissions},
    {"ring_completions_total", "Completion queue entries reaped from io_uring.",
     &ShardSnapshot::ring_completions},
    {"file_evictions_total",
     "Open torrent files closed to stay within --max-open-files (least recently used first).",
     &ShardSnapshot::file_evictions},
};

struct GaugeDef {
  std::string_view name;
  std::string_view help;
  int64_t ShardSnapshot::*field;
};

constexpr GaugeDef kGauges[] = {
    {"hash_queue_depth", "Pieces handed to the hash pool whose result has not come back.",
     &ShardSnapshot::hash_queue_depth},
    {"disk_queue_depth", "Disk operations submitted and not yet completed.",
     &ShardSnapshot::disk_queue_depth},
    {"open_files", "Torrent data files open (buffered and O_DIRECT descriptors).",
     &ShardSnapshot::open_files},
    {"receive_buffer_bytes",
     "Bytes of peer connections' receive buffers; with piece buffers they stay within "
     "--piece-memory unless many connections each hold their first buffer.",
     &ShardSnapshot::receive_buffer_bytes},
};

constexpr std::string_view kPeersHelp = "Peer connections by state.";
constexpr std::string_view kDiskLatencyHelp =
    "Time from submitting a disk operation to its completion, in seconds.";

std::string Session(std::string_view name) { return std::string("torrenty_").append(name); }
std::string PerShard(std::string_view name) { return std::string("torrenty_shard_").append(name); }
std::string PerShardHelp(std::string_view help) { return std::string(help).append(" Per shard."); }

}  // namespace

std::string_view LabelValue(PeerState state) {
  switch (state) {
    case PeerState::kConnecting:
      return "connecting";
    case PeerState::kHandshaking:
      return "handshaking";
    case PeerState::kActive:
      return "active";
    case PeerState::kIdle:
      return "idle";
  }
  return "unknown";
}

std::string_view LabelValue(AnnounceResult result) {
  switch (result) {
    case AnnounceResult::kSuccess:
      return "success";
    case AnnounceResult::kTrackerFailure:
      return "tracker_failure";
    case AnnounceResult::kTimeout:
      return "timeout";
    case AnnounceResult::kNetworkError:
      return "network_error";
    case AnnounceResult::kInvalidResponse:
      return "invalid_response";
  }
  return "unknown";
}

std::string_view LabelValue(TorrentState state) {
  switch (state) {
    case TorrentState::kStopped:
      return "stopped";
    case TorrentState::kCheckWait:
      return "check_wait";
    case TorrentState::kChecking:
      return "checking";
    case TorrentState::kDownloadWait:
      return "download_wait";
    case TorrentState::kDownloading:
      return "downloading";
    case TorrentState::kSeedWait:
      return "seed_wait";
    case TorrentState::kSeeding:
      return "seeding";
  }
  return "unknown";
}

const HistogramBuckets& DiskLatencyBuckets() {
  // 10 µs * 2^17 = 1.31 s. Arguments fixed and covered by a unit test, so the value is present.
  static const HistogramBuckets* const buckets =
      new HistogramBuckets(*HistogramBuckets::Exponential(10'000, 2, 18, 1e9));
  return *buckets;
}

void ShardInstruments::Snapshot(ShardSnapshot* out) const {
  out->payload_received_bytes = payload_received_bytes.Read();
  out->payload_sent_bytes = payload_sent_bytes.Read();
  out->protocol_received_bytes = protocol_received_bytes.Read();
  out->protocol_sent_bytes = protocol_sent_bytes.Read();
  out->pieces_verified = pieces_verified.Read();
  out->pieces_failed = pieces_failed.Read();
  out->ring_submissions = ring_submissions.Read();
  out->ring_completions = ring_completions.Read();
  out->hash_queue_depth = hash_queue_depth.Read();
  out->disk_queue_depth = disk_queue_depth.Read();
  out->file_evictions = file_evictions.Read();
  out->open_files = open_files.Read();
  out->receive_buffer_bytes = receive_buffer_bytes.Read();
  for (int i = 0; i < kPeerStateCount; ++i) out->peers[i] = peers[i].Read();
  disk_latency.Snapshot(&out->disk_latency);
}

void SessionInstruments::Snapshot(SessionSnapshot* out) const {
  for (int i = 0; i < kAnnounceResultCount; ++i) out->announces[i] = announces[i].Read();
  for (int i = 0; i < kTorrentStateCount; ++i) out->torrents[i] = torrents[i].Read();
}

absl::StatusOr<ShardSnapshot> SumShards(absl::Span<const ShardSnapshot> shards) {
  ShardSnapshot total;
  if (!shards.empty()) total.disk_latency = HistogramSnapshot{};
  for (const ShardSnapshot& s : shards) {
    for (const CounterDef& c : kCounters) total.*c.field += s.*c.field;
    for (const GaugeDef& g : kGauges) total.*g.field += s.*g.field;
    for (int i = 0; i < kPeerStateCount; ++i) total.peers[i] += s.peers[i];
    if (absl::Status st = MergeHistogram(s.disk_latency, &total.disk_latency); !st.ok()) return st;
  }
  return total;
}

absl::StatusOr<std::string> RenderSessionMetrics(const SessionSnapshot& session) {
  absl::StatusOr<ShardSnapshot> total = SumShards(session.shards);
  if (!total.ok()) return total.status();
  std::vector<std::string> shard_ids;
  shard_ids.reserve(session.shards.size());
  for (size_t i = 0; i < session.shards.size(); ++i) shard_ids.push_back(absl::StrCat(i));

  TextWriter w;
  for (const CounterDef& c : kCounters) {
    w.BeginFamily(Session(c.name), MetricType::kCounter, c.help);
    w.Counter({}, (*total).*c.field);
    w.BeginFamily(PerShard(c.name), MetricType::kCounter, PerShardHelp(c.help));
    for (size_t i = 0; i < session.shards.size(); ++i) {
      w.Counter({{"shard", shard_ids[i]}}, session.shards[i].*c.field);
    }
  }
  for (const GaugeDef& g : kGauges) {
    w.BeginFamily(Session(g.name), MetricType::kGauge, g.help);
    w.Gauge({}, static_cast<double>((*total).*g.field));
    w.BeginFamily(PerShard(g.name), MetricType::kGauge, PerShardHelp(g.help));
    for (size_t i = 0; i < session.shards.size(); ++i) {
      w.Gauge({{"shard", shard_ids[i]}}, static_cast<double>(session.shards[i].*g.field));
    }
  }

  w.BeginFamily(Session("peers"), MetricType::kGauge, kPeersHelp);
  for (int s = 0; s < kPeerStateCount; ++s) {
    w.Gauge({{"state", LabelValue(static_cast<PeerState>(s))}},
            static_cast<double>(total->peers[s]));
  }
  w.BeginFamily(PerShard("peers"), MetricType::kGauge, PerShardHelp(kPeersHelp));
  for (size_t i = 0; i < session.shards.size(); ++i) {
    for (int s = 0; s < kPeerStateCount; ++s) {
      w.Gauge({{"shard", shard_ids[i]}, {"state", LabelValue(static_cast<PeerState>(s))}},
              static_cast<double>(session.shards[i].peers[s]));
    }
  }

  w.BeginFamily(Session("disk_latency_seconds"), MetricType::kHistogram, kDiskLatencyHelp);
  w.Histogram({}, total->disk_latency);
  w.BeginFamily(PerShard("disk_latency_seconds"), MetricType::kHistogram,
                PerShardHelp(kDiskLatencyHelp));
  for (size_t i = 0; i < session.shards.size(); ++i) {
    w.Histogram({{"shard", shard_ids[i]}}, session.shards[i].disk_latency);
  }

  w.BeginFamily(Session("announces_total"), MetricType::kCounter,
                "Tracker announces by how they ended.");
  for (int r = 0; r < kAnnounceResultCount; ++r) {
    w.Counter({{"result", LabelValue(static_cast<AnnounceResult>(r))}}, session.announces[r]);
  }
  w.BeginFamily(Session("torrents"), MetricType::kGauge, "Torrents by state.");
  for (int s = 0; s < kTorrentStateCount; ++s) {
    w.Gauge({{"state", LabelValue(static_cast<TorrentState>(s))}},
            static_cast<double>(session.torrents[s]));
  }

  // Totals a dashboard wants without a sum(): they add nothing the families above lack.
  int64_t torrents = 0;
  for (int64_t n : session.torrents) torrents += n;
  w.BeginFamily(Session("torrents_hosted"), MetricType::kGauge,
                "Torrents the session hosts, in any state.");
  w.Gauge({}, static_cast<double>(torrents));
  w.BeginFamily(Session("peers_connected"), MetricType::kGauge,
                "Peer connections past the handshake (active and idle).");
  w.Gauge({}, static_cast<double>(total->peers[static_cast<int>(PeerState::kActive)] +
                                  total->peers[static_cast<int>(PeerState::kIdle)]));
  w.BeginFamily(Session("shards"), MetricType::kGauge,
                "Shards: threads with their own io_uring ring and peer connections.");
  w.Gauge({}, static_cast<double>(session.shards.size()));
  return std::move(w).Finish();
}

absl::StatusOr<std::string> ScrapeSessionMetrics(absl::Span<const ShardInstruments* const> shards,
                                                 const SessionInstruments& session) {
  SessionSnapshot snapshot;
  snapshot.shards.resize(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) shards[i]->Snapshot(&snapshot.shards[i]);
  session.Snapshot(&snapshot);
  return RenderSessionMetrics(snapshot);
}

}  // namespace torrenty::io::metrics
