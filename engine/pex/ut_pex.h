// BEP 11 peer exchange (`ut_pex`): the message codec and the per-connection state machine,
// sans I/O. Not wired into engine::Torrent here; this is the interface the extension layer
// (BEP 10, which negotiates the `ut_pex` id) plugs in:
//
//   Sending, per connection whose extension handshake listed `ut_pex`:
//     PexState pex(torrent_is_private, remote_endpoint);   // at connect
//     // every tick, with the torrent's connected peers (any order; the remote itself is skipped):
//     if (std::optional<std::string> payload = pex.Poll(now, connected_peers))
//       send extended message <id the peer gave for ut_pex> + *payload;
//     pex.NextDue() says when Poll may next have a message (kNever for a private torrent).
//   Receiving, for an extended message with our ut_pex id:
//     absl::StatusOr<PexMessage> m = pex.HandleMessage(payload, now);
//     error   -> malformed: a protocol error (close, as for any bad wire message);
//     ok      -> m->added are peer candidates (m->dropped may be ignored); empty when the
//                message came sooner than allowed or the torrent is private (then nothing
//                from it is used, and nothing is sent).
//
// Bounds: a payload over kMaxPexPayloadBytes is refused whole; compact lists must be whole
// entries (6 bytes IPv4, 18 bytes IPv6); at most kMaxPexAdded added and kMaxPexDropped dropped
// entries are taken from a message (IPv4 first, the rest ignored), entries with port 0 are
// skipped; a flags string (`added.f`, `added6.f`) whose length does not match is ignored (flags
// 0). We send at most one message per `interval_ms` (60 s) with the same bounds, the changes
// since the last message we sent (peers beyond the bound wait for the next one).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine::pex {

inline constexpr size_t kMaxPexPayloadBytes = 8 * 1024;
inline constexpr size_t kMaxPexAdded = 50;
inline constexpr size_t kMaxPexDropped = 50;

// `added.f` bits (BEP 11 as libtorrent and others send them).
inline constexpr uint8_t kPexEncryption = 0x01;
inline constexpr uint8_t kPexSeed = 0x02;
inline constexpr uint8_t kPexUtp = 0x04;
inline constexpr uint8_t kPexHolepunch = 0x08;
inline constexpr uint8_t kPexOutgoing = 0x10;  // we dialled it: it accepts connections

// An IPv4 or IPv6 endpoint. IPv4 uses ip[0..3] in network byte order, the rest zero.
struct PexEndpoint {
  bool v6 = false;
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;

  static PexEndpoint FromV4(PeerAddress a);
  static PexEndpoint FromV6(const std::array<uint8_t, 16>& ip, uint16_t port);
  // The IPv4 address as engine::PeerAddress; only for !v6.
  PeerAddress v4() const;
  std::string ToString() const;

  friend bool operator==(const PexEndpoint&, const PexEndpoint&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PexEndpoint& e) {
    return H::combine(std::move(h), e.v6, e.ip, e.port);
  }
};

struct PexPeer {
  PexEndpoint endpoint;
  uint8_t flags = 0;
  friend bool operator==(const PexPeer&, const PexPeer&) = default;
};

struct PexMessage {
  std::vector<PexPeer> added;
  std::vector<PexEndpoint> dropped;
};

// The bencoded dict (keys added, added.f, added6, added6.f, dropped, dropped6; empty lists are
// left out). The caller keeps within kMaxPexAdded / kMaxPexDropped; beyond them the encoder
// drops entries, so what we send always parses.
[[nodiscard]] std::string EncodePex(const PexMessage& m);
[[nodiscard]] absl::StatusOr<PexMessage> ParsePex(absl::Span<const uint8_t> payload);

class PexState {
 public:
  struct Config {
    int64_t interval_ms = 60'000;
    // Messages from the peer closer together than this are dropped unread (libtorrent sends
    // one a minute; a flood must not cost a parse and a candidate insert each).
    int64_t min_receive_interval_ms = 10'000;
    size_t max_added = kMaxPexAdded;
    size_t max_dropped = kMaxPexDropped;
  };
  static constexpr Instant kNever{INT64_MAX};

  PexState(bool torrent_is_private, PexEndpoint remote);
  PexState(bool torrent_is_private, PexEndpoint remote, Config config);

  // The next payload to send, at most one per interval_ms (the first one at once), holding the
  // peers of `connected` not yet sent (added) and the ones sent that left (dropped). nullopt
  // when not due, nothing changed, or the torrent is private.
  std::optional<std::string> Poll(Instant now, absl::Span<const PexPeer> connected);
  Instant NextDue() const;

  // A received ut_pex payload: see the file comment.
  [[nodiscard]] absl::StatusOr<PexMessage> HandleMessage(absl::Span<const uint8_t> payload,
                                                         Instant now);

  size_t advertised() const { return sent_.size(); }
  uint64_t dropped_messages() const { return dropped_messages_; }

 private:
  bool private_;
  PexEndpoint remote_;
  Config config_;
  bool sent_any_ = false;
  Instant last_sent_{};
  bool received_any_ = false;
  Instant last_received_{};
  uint64_t dropped_messages_ = 0;
  absl::flat_hash_set<PexEndpoint> sent_;  // what the peer has been told is connected
  absl::flat_hash_set<PexEndpoint> scratch_;
};

}  // namespace torrenty::engine::pex
