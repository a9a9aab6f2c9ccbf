// UDP tracker protocol (BEP 15): packet codec, URL parsing, and a sans-I/O state machine for one
// tracker's connect/announce exchange (transaction ids, retransmission, connection-id reuse).
// io/udp_tracker_transport.h moves the datagrams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tracker/http_announce.h"
#include "engine/base/types.h"

namespace torrenty::engine {

// The magic constant that opens every connect request.
inline constexpr uint64_t kUdpTrackerProtocolId = 0x41727101980;
inline constexpr size_t kUdpConnectRequestSize = 16;
inline constexpr size_t kUdpConnectResponseSize = 16;
inline constexpr size_t kUdpAnnounceRequestSize = 98;
// action, transaction id, interval, leechers, seeders; then 6 bytes per IPv4 peer.
inline constexpr size_t kUdpAnnounceResponseHeaderSize = 20;

enum class UdpAction : uint32_t { kConnect = 0, kAnnounce = 1, kScrape = 2, kError = 3 };

// Writes a connect request (protocol id, action 0, `tid`).
void EncodeConnectRequest(uint32_t tid, uint8_t out[kUdpConnectRequestSize]);

// Writes a 98-byte announce request. The event maps to 0 none, 1 completed, 2 started,
// 3 stopped; ip is 0 (the tracker uses the source address); a negative numwant is sent as -1
// (tracker default); uploaded/downloaded/left below 0 are sent as 0.
void EncodeAnnounceRequest(uint64_t connection_id, uint32_t tid, const AnnounceParams& params,
                           uint32_t key, uint8_t out[kUdpAnnounceRequestSize]);

struct UdpTrackerResponse {
  UdpAction action = UdpAction::kConnect;
  uint32_t transaction_id = 0;
  // kConnect only.
  uint64_t connection_id = 0;
  // kAnnounce only: interval, complete (seeders), incomplete (leechers), peers. Peers with port 0
  // are skipped; at most kMaxPeersPerAnnounce are kept.
  AnnounceResponse announce;
  // kError only; at most kMaxTrackerMessageBytes.
  std::string error_message;
};

// Parses one datagram from a tracker. Strict about sizes: a connect response is exactly 16 bytes,
// an announce response 20 + 6n bytes, an error at least 8. Errors (InvalidArgument) for anything
// else, including scrape responses and unknown actions.
[[nodiscard]] absl::StatusOr<UdpTrackerResponse> ParseUdpTrackerResponse(
    absl::Span<const uint8_t> datagram);

struct UdpTrackerEndpoint {
  std::string host;  // Without brackets for an IPv6 literal.
  uint16_t port = 0;
};

// "udp://host:port[/path][?query]" → host and port. The scheme is case-insensitive; the port is
// required (1-65535); any path or query (BEP 41 URL data) is ignored.
[[nodiscard]] absl::StatusOr<UdpTrackerEndpoint> ParseUdpTrackerUrl(std::string_view url);

// One tracker's BEP 15 exchange: connect (unless a connection id from the last minute is cached),
// then announce. Retransmits an unanswered packet after 15·2ⁿ s (n = 0, 1, ... up to
// max_retransmits, at most 8), then fails with DeadlineExceeded. n counts over the whole exchange
// (connect and announce), so a tracker that answers connects but never announces still gives up.
// Datagrams whose transaction id or action do not match the outstanding request are ignored.
// Only one announce at a time; Start abandons any exchange in progress.
class UdpTrackerExchange {
 public:
  static constexpr int64_t kConnectionIdLifetimeMs = 60'000;
  static constexpr int64_t kBaseTimeoutMs = 15'000;
  static constexpr int kMaxRetransmits = 8;
  static constexpr Instant kNever{std::numeric_limits<int64_t>::max()};

  struct Step {
    enum class Kind {
      kNothing,  // Nothing to do (ignored datagram, timeout not due, idle).
      kSend,     // Send `packet` to the tracker.
      kDone,     // The exchange finished with `result`; the exchange is idle again.
    };
    Kind kind = Kind::kNothing;
    // kSend: points into the exchange; valid until the next non-const call.
    absl::Span<const uint8_t> packet;
    // kDone: the announce response (failure_reason set when the tracker sent an error), or
    // DeadlineExceeded after the last retransmission, or the parse error of a malformed answer
    // to our transaction.
    absl::StatusOr<AnnounceResponse> result;
  };

  // `seed` drives transaction ids; `key` is sent in every announce (lets the tracker recognise us
  // across address changes).
  UdpTrackerExchange(uint64_t seed, uint32_t key);

  // Begins an announce; returns the first packet (connect or, with a fresh cached connection id,
  // announce). `max_retransmits` is clamped to [0, kMaxRetransmits].
  absl::Span<const uint8_t> Start(const AnnounceParams& params, Instant now,
                                  int max_retransmits = kMaxRetransmits);
  Step HandleDatagram(absl::Span<const uint8_t> datagram, Instant now);
  // Retransmits (kSend) or gives up (kDone) if the current packet's deadline has passed.
  Step HandleTimeout(Instant now);
  // Drops the exchange in progress without a result; the cached connection id is kept.
  void Abandon();

  bool busy() const { return state_ != State::kIdle; }
  // When HandleTimeout next has something to do; kNever when idle.
  Instant next_timeout() const { return busy() ? deadline_ : kNever; }
  // The cached connection id if it is still usable at `now`.
  std::optional<uint64_t> connection_id(Instant now) const;
  // Packets sent for the current exchange so far (first sends and retransmissions).
  int packets_sent() const { return packets_sent_; }

 private:
  enum class State { kIdle, kConnecting, kAnnouncing };

  uint32_t NewTid();
  absl::Span<const uint8_t> SendConnect(Instant now);
  absl::Span<const uint8_t> SendAnnounce(Instant now);
  Step Finish(absl::StatusOr<AnnounceResponse> result);

  std::mt19937_64 rng_;
  uint32_t key_;
  State state_ = State::kIdle;
  AnnounceParams params_;
  int max_retransmits_ = kMaxRetransmits;
  int attempt_ = 0;  // n in 15·2ⁿ
  int packets_sent_ = 0;
  uint32_t tid_ = 0;
  Instant deadline_ = kNever;
  std::optional<uint64_t> connection_id_;
  Instant connection_id_expiry_{0};
  uint8_t packet_[kUdpAnnounceRequestSize] = {};
  size_t packet_len_ = 0;
};

}  // namespace torrenty::engine
