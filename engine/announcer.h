// Sans-I/O announce scheduler for one torrent's HTTP trackers: decides when to announce, to
// which tracker (BEP 12 tiers), with which event, and reacts to results. io/ performs the GETs.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tracker.h"
#include "engine/types.h"

namespace torrenty::engine {

struct TransferStats {
  int64_t uploaded = 0;
  int64_t downloaded = 0;
  int64_t left = 0;
};

struct PendingAnnounce {
  // Unique within one Announcer only; callers sharing a fetcher between torrents map it.
  uint64_t id = 0;
  std::string url;
  AnnounceEvent event = AnnounceEvent::kNone;
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

  // `tiers` is the announce-list (or {{announce}}). Each tier is shuffled with `seed` (BEP 12).
  // Only http(s) trackers are announced to; udp:// ones are remembered (udp_trackers()) for when
  // BEP 15 lands; anything else is dropped. Duplicate URLs are kept once.
  Announcer(Config config, std::vector<std::vector<std::string>> tiers, uint64_t seed);

  // Any http(s) tracker at all.
  bool has_trackers() const;
  // udp:// trackers seen in the tiers, in tier order (not announced to yet).
  const std::vector<std::string>& udp_trackers() const { return udp_trackers_; }

  // If an announce is due at `now` and none is in flight, returns it (URL ready for GET) and
  // marks it in flight. Each tracker's first announce carries event=started.
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

  // When Poll should next be called; kNever while a request is in flight (its result drives the
  // schedule), after Stop has run its course, or with no trackers.
  Instant next_wakeup() const;

 private:
  struct Tracker {
    std::string url;
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

  Config config_;
  std::vector<std::vector<Tracker>> tiers_;  // Only http(s) trackers; no empty tiers.
  std::vector<std::string> udp_trackers_;
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
