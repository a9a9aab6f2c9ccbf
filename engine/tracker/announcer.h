// Sans-I/O announce scheduler for one torrent's trackers, HTTP(S) and UDP (BEP 15) mixed in the
// same BEP 12 tiers: decides when to announce, to which tracker, with which event, and reacts to
// results. io/ performs the GETs (HttpFetcher) and the UDP exchanges (UdpTrackerTransport).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "engine/tracker/http_announce.h"

namespace torrenty::engine {

struct TransferStats {
  int64_t uploaded = 0;
  int64_t downloaded = 0;
  int64_t left = 0;
};

struct PendingAnnounce {
  enum class Transport { kHttp, kUdp };
  // Unique within one Announcer only; callers sharing a fetcher between torrents map it.
  uint64_t id = 0;
  Transport transport = Transport::kHttp;
  // kHttp: the URL to GET, query included. kUdp: the tracker's URL as listed (for logs).
  std::string url;
  AnnounceEvent event = AnnounceEvent::kNone;
  // kUdp only: where to send, what to announce (`params.event` == `event`), and how many
  // retransmissions the exchange may make before the result is a failure (BEP 15's 8 when the
  // tracker is the only one; fewer when there are others to fall through to).
  std::string udp_host;
  uint16_t udp_port = 0;
  AnnounceParams params;
  int udp_max_retransmits = 0;
};

class Announcer {
 public:
  struct Config {
    InfoHash info_hash{};
    PeerId peer_id{};
    uint16_t port = 0;
    int numwant = 200;
  };

  // Scheduling constants (milliseconds).
  static constexpr int64_t kMinIntervalMs = 30'000;
  static constexpr int64_t kMaxIntervalMs = 3'600'000;
  // Used when a tracker sends no interval.
  static constexpr int64_t kDefaultIntervalMs = 1'800'000;
  // Used when a tracker sends no min interval.
  static constexpr int64_t kDefaultMinIntervalMs = 30'000;
  static constexpr int64_t kInitialBackoffMs = 15'000;
  static constexpr int64_t kMaxBackoffMs = 1'800'000;
  static constexpr Instant kNever{std::numeric_limits<int64_t>::max()};
  // BEP 15 allows 8 retransmissions (15·2ⁿ s, about 2 h in all). With other trackers to try, a
  // silent UDP tracker is given up after one retransmission (45 s); a stopped announce gets none.
  static constexpr int kUdpMaxRetransmits = 8;
  static constexpr int kUdpRetransmitsWithFallback = 1;

  // `tiers` is the announce-list (or {{announce}}). Each tier is shuffled with `seed` (BEP 12).
  // http(s):// and udp://host:port trackers are announced to; anything else (and udp URLs
  // without a valid port) is dropped. Duplicate URLs are kept once.
  Announcer(Config config, std::vector<std::vector<std::string>> tiers, uint64_t seed);

  // Any http(s) or udp tracker at all.
  bool has_trackers() const;
  // Stop() was called and `stopped` has not gone out yet (a `completed` is still under way).
  bool stop_pending() const { return state_ == State::kStopPending; }
  bool has_http_trackers() const { return http_count_ > 0; }
  bool has_udp_trackers() const { return !udp_trackers_.empty(); }
  // udp:// trackers kept, in tier order (before shuffling).
  const std::vector<std::string>& udp_trackers() const { return udp_trackers_; }

  // If an announce is due at `now` and none is in flight, returns it (for http: URL ready for
  // GET; for udp: endpoint and parameters) and marks it in flight. Each tracker's first announce
  // carries event=started.
  std::optional<PendingAnnounce> Poll(Instant now, const TransferStats& stats);

  // Result of request `id`: the body, or a transport error. Returns the parsed response (peers to
  // try) or an error for the caller to log: the transport error, an unparseable body, a tracker
  // "failure reason" (as UnavailableError), or a stale/unknown id (FailedPrecondition, with no
  // effect on the schedule). On failure the next tracker of the tier is tried at once, then the
  // next tier; when every tracker failed, the sweep restarts after a backoff (15 s doubling to
  // 30 min). On success the tracker moves to the front of its tier and the next announce is due
  // after its interval, clamped to [30 s, 1 h].
  absl::StatusOr<AnnounceResponse> HandleResult(uint64_t id,
                                                const absl::StatusOr<std::string>& body,
                                                Instant now);
  // Result of a UDP request `id`: the tracker's answer (failure_reason set for a BEP 15 error)
  // or a transport error (e.g. DeadlineExceeded after the last retransmission). Same policy and
  // return values as HandleResult.
  absl::StatusOr<AnnounceResponse> HandleUdpResult(uint64_t id,
                                                   const absl::StatusOr<AnnounceResponse>& result,
                                                   Instant now);

  // The peer list ran dry: announce again soon, but not before the min interval (30 s if the
  // tracker gave none) since the last successful announce. No effect before the first success.
  void NeedPeers(Instant now);
  // The download finished: the next announce is due immediately and carries event=completed
  // (once; it is retried on failure like any announce).
  void Completed(Instant now);
  // The torrent stops: the next Poll returns event=stopped at once, even if an announce is in
  // flight (its result is then ignored). After that one request, no more announces. If nothing was
  // ever sent, there is nobody to tell and the announcer stops silently.
  void Stop(Instant now);

  // The tracker and event the next Poll would announce to and with (if nothing changes before),
  // so a session can ask for a slot on that tracker's host first. Empty URL with no trackers.
  const std::string& next_tracker_url() const;
  AnnounceEvent next_event() const;

  // When Poll should next be called; kNever while a request is in flight (its result drives the
  // schedule), after Stop has run its course, or with no trackers.
  Instant next_wakeup() const;

 private:
  struct Tracker {
    std::string url;
    // udp:// trackers: the endpoint parsed from `url`.
    bool udp = false;
    std::string udp_host;
    uint16_t udp_port = 0;
    std::string tracker_id;
    // Whether this tracker acknowledged an event=started; until then every announce to it
    // carries started.
    bool started = false;
  };
  struct InFlight {
    uint64_t id = 0;
    size_t tier = 0;
    size_t index = 0;
    AnnounceEvent event = AnnounceEvent::kNone;
  };
  enum class State { kRunning, kStopPending, kStopSent, kStopped };

  // Moves the cursor to the next tracker after a failure; returns false when the sweep wrapped.
  bool Advance();
  void OnFailure(Instant now);
  absl::StatusOr<AnnounceResponse> HandleParsed(uint64_t id,
                                                absl::StatusOr<AnnounceResponse> parsed,
                                                Instant now);

  Config config_;
  std::vector<std::vector<Tracker>> tiers_;  // http(s) and udp trackers; no empty tiers.
  std::vector<std::string> udp_trackers_;
  size_t http_count_ = 0;
  size_t tracker_count_ = 0;
  State state_ = State::kRunning;
  // Where the current sweep is (BEP 12: each announce starts at the first tracker of tier 0).
  size_t cursor_tier_ = 0;
  size_t cursor_index_ = 0;
  std::optional<InFlight> in_flight_;
  uint64_t next_id_ = 1;
  Instant next_announce_{0};
  int64_t backoff_ms_ = kInitialBackoffMs;
  bool completed_pending_ = false;
  bool ever_sent_ = false;
  std::optional<Instant> last_success_;
  int64_t min_interval_ms_ = kDefaultMinIntervalMs;
  // Set when a whole sweep failed; cleared by the next success. NeedPeers then waits for the
  // backoff instead of hammering dead trackers.
  bool failing_ = false;
  size_t last_good_tier_ = 0;
  size_t last_good_index_ = 0;
  size_t last_sent_tier_ = 0;
  size_t last_sent_index_ = 0;
  // Where the stopped announce goes: the tracker that last answered, else the last one tried.
  size_t stop_tier_ = 0;
  size_t stop_index_ = 0;
};

}  // namespace torrenty::engine
