// BEP 14 local service discovery for a whole session, sans I/O: which torrents to announce on
// the multicast group and when, and which peers a received announce names.
//
// io/ feeds it: AddTorrent/RemoveTorrent as torrents start and stop, Poll(now) for the datagram
// to send (at most one per `min_gap_ms` over all torrents; each carries the torrents longest
// due, up to `max_hashes_per_message`), NextTimeout() for when Poll has work next, and
// HandleDatagram for every datagram received on the group. A torrent is announced when it is
// added and every `reannounce_ms` after. Private torrents (BEP 27) are never announced and never
// matched. A datagram carrying our own cookie is our own looped back and is ignored; a peer
// that repeats its announce is reported once per `peer_repeat_ms` (the table of recent peers is
// bounded, so a flood of forged senders costs bounded memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/types.h"
#include "engine/lsd/lsd_message.h"

namespace torrenty::engine::lsd {

class LsdScheduler {
 public:
  struct Config {
    uint16_t port = 0;   // our listening port, sent in every announce
    std::string cookie;  // ours: random per session, so our own looped-back copies are dropped
    std::string host = kLsdHostV4;
    int64_t reannounce_ms = 5 * 60 * 1000;
    int64_t min_gap_ms = 2'000;
    size_t max_hashes_per_message = 16;
    int64_t peer_repeat_ms = 60'000;
    size_t max_recent_peers = 4096;
  };
  struct Found {
    uint64_t torrent = 0;
    PeerAddress peer;
  };
  static constexpr Instant kNever{INT64_MAX};

  explicit LsdScheduler(Config config);

  void set_port(uint16_t port) { config_.port = port; }
  // A torrent already known keeps its place. A private torrent is not added.
  void AddTorrent(uint64_t id, const InfoHash& info_hash, bool is_private, Instant now);
  void RemoveTorrent(uint64_t id);
  size_t torrents() const { return by_id_.size(); }

  // The datagram to send at `now`, if one is due.
  std::optional<std::string> Poll(Instant now);
  Instant NextTimeout() const;

  // A datagram from `from_ip` (host byte order): appends to *found a peer (from_ip, Port) for
  // each announced info-hash of ours (none when from_ip is 0.0.0.0). InvalidArgument for a
  // malformed datagram.
  [[nodiscard]] absl::Status HandleDatagram(absl::Span<const uint8_t> datagram, uint32_t from_ip,
                                            Instant now, std::vector<Found>* found);

 private:
  struct Torrent {
    InfoHash info_hash;
    int64_t due_ms = 0;
  };
  struct RecentKey {
    uint64_t torrent;
    PeerAddress peer;
    friend bool operator==(const RecentKey&, const RecentKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const RecentKey& k) {
      return H::combine(std::move(h), k.torrent, k.peer);
    }
  };

  Config config_;
  absl::flat_hash_map<uint64_t, Torrent> by_id_;
  absl::flat_hash_map<InfoHash, uint64_t> by_hash_;
  std::set<std::pair<int64_t, uint64_t>> due_;  // (due_ms, id), so Poll never walks every torrent
  int64_t last_sent_ms_ = INT64_MIN;
  absl::flat_hash_map<RecentKey, int64_t> recent_;  // when each peer was last reported
};

}  // namespace torrenty::engine::lsd
