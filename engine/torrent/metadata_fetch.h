// Fetching a torrent's info dict from peers (BEP 9 over BEP 10) when only its info-hash is known
// (a magnet link). Sans-I/O like engine::Torrent: io/ dials the addresses of kConnect actions,
// feeds bytes and time, and sends what NextSend returns.
//
// Which peers are used: those whose extension handshake names ut_metadata and a metadata_size
// within ext::kMaxMetadataSize. The size of the first such peer is the working size; peers that
// advertise another size wait. Pieces (16 KiB) are requested at most kPerPeer at a time per peer;
// a reject frees the piece for another peer, a request unanswered for request_timeout is freed too.
// A peer whose data message names another total_size is dropped and banned ("lies about size").
// When every piece is in, the SHA-1 must equal the info-hash: if one peer sent all of it, that peer
// is banned; if several did, everything is fetched again from a single peer, so the next failure
// names the liar. The bytes are then parsed by the caller (ParseInfoDict).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

struct MetadataFetchConfig {
  InfoHash info_hash{};
  PeerId self_id{};
  uint16_t listen_port = 0;
  uint32_t connections_max = 30;
  // Metadata pieces requested at once over all peers, and from one peer.
  uint32_t requests_max = 16;
  uint32_t requests_per_peer_max = 4;
  int64_t request_timeout_ms = 15'000;
  int64_t handshake_timeout_ms = 20'000;
  int64_t reject_backoff_ms = 5'000;
  int64_t connect_retry_base_ms = 5'000;
};

class MetadataFetch {
 public:
  explicit MetadataFetch(MetadataFetchConfig config);
  ~MetadataFetch();

  bool done() const { return done_; }
  // The verified info dict, once done().
  const std::string& info_bytes() const { return info_; }
  size_t num_peers() const { return peers_.size(); }
  // Connected peers that offer the metadata.
  size_t num_metadata_peers() const;
  bool IsBanned(PeerAddress a) const;

  void AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now);
  void HandlePeerConnected(PeerKey key, PeerAddress address, Instant now);
  void HandleConnectFailed(PeerAddress address, Instant now);
  size_t HandleBytes(PeerKey key, absl::Span<const uint8_t> bytes, Instant now);
  void HandlePeerClosed(PeerKey key, Instant now);
  void HandleTick(Instant now);
  [[nodiscard]] Instant NextTimeout() const;
  // kConnect, kFlush, kClose and kLog.
  void TakeActions(std::vector<Action>* out);
  absl::Span<const uint8_t> NextSend(PeerKey key);
  void HandleSent(PeerKey key, size_t bytes, Instant now);

 private:
  struct Peer;
  struct Piece {
    bool have = false;
    PeerKey requested_from = 0;  // 0: not requested
    Instant requested_at{};
    PeerAddress source{};
  };
  struct Candidate {
    int failures = 0;
    bool connected = false;
    Instant next_attempt{};
  };

  void Emit(Action a) { actions_.push_back(std::move(a)); }
  void Log(std::string message);
  void Close(Peer& p, CloseReason reason, std::string message);
  void Drop(Peer& p, std::string why);  // close and ban
  void Forget(PeerKey key, Instant now);
  bool HandleMessage(Peer& p, absl::Span<const uint8_t> msg, Instant now);
  bool HandleExtHandshake(Peer& p, absl::Span<const uint8_t> payload, Instant now);
  bool HandleMetadata(Peer& p, absl::Span<const uint8_t> payload, Instant now);
  void Append(Peer& p, absl::Span<const uint8_t> bytes);
  void SendExtended(Peer& p, uint8_t id, const std::string& payload);
  void ChooseSize();
  void Reset();
  void FillRequests(Instant now);
  void Finish(Instant now);
  void Dial(Instant now);

  MetadataFetchConfig config_;
  std::vector<Action> actions_;
  absl::flat_hash_map<PeerKey, std::unique_ptr<Peer>> peers_;
  absl::flat_hash_map<PeerAddress, Candidate> candidates_;
  uint32_t connecting_ = 0;
  std::vector<PeerAddress> banned_;
  int64_t size_ = -1;  // working metadata size; -1 until a peer offers one
  std::string buffer_;
  std::vector<Piece> pieces_;
  uint32_t in_flight_ = 0;
  bool single_source_ = false;
  PeerKey single_peer_ = 0;
  bool done_ = false;
  std::string info_;
  Instant next_dial_at_ = kNoTimeout;
};

// The Metainfo of a verified info dict (a magnet download has no announce list of its own: the
// caller adds the link's trackers).
[[nodiscard]] absl::StatusOr<Metainfo> ParseInfoDict(absl::string_view info_bytes);

// A .torrent holding `info_bytes` and the trackers (one tier each, BEP 12), for saving.
std::string MakeTorrentFile(absl::string_view info_bytes, const std::vector<std::string>& trackers);

}  // namespace torrenty::engine
