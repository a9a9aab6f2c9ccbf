// Session-wide admission of tracker announces, so a session with thousands of torrents neither
// announces in lockstep nor opens hundreds of connections to one tracker at once. Sans-I/O: fed
// time, it only says which torrent's Announcer may send next; the per-torrent schedule (events,
// intervals, tiers, backoff) stays in engine::Announcer, unchanged.
//
// What serious clients do, and what this follows: libtorrent caps concurrent HTTP announces
// (settings_pack::max_concurrent_http_announces, 50) and queues the rest; Transmission announces
// a bounded number of tiers per upkeep and orders its queue so that `stopped` and `completed` go
// before routine announces; both announce a torrent the user just added at once. Neither spreads
// a start-up's first round on purpose, which is how thousands of restored torrents end up
// re-announcing in lockstep, every interval, for the life of the process. Here:
//  - A torrent's first announce is at once when it is a download without peers (the user is
//    waiting for data) or when it arrives alone (a small burst of immediate starts is allowed).
//    Torrents that arrive in bulk beyond that burst (start-up restoring thousands of seeds, a
//    watch folder filling) get their first announce uniformly at random over
//    min(interval, max_spread). A seed restarted within the interval is still in the tracker's
//    peer list, so the delay costs its swarm nothing; the random phase then carries over to
//    every later announce, since each is due one interval after the previous answer.
//  - At most `max_per_host` announces are in flight per tracker host (scheme, host, port) and
//    `max_in_flight` over the session. The rest wait in FIFO order within three priorities:
//    `stopped` first (on shutdown it is the last word and should not queue behind routine
//    announces), then urgent ones (completed, downloads that need peers), then routine.
//
// Use from the session (one thread):
//   scheduler.AddTorrent(t, now, needs_peers);                      // on add / restore
//   when t's announcer.next_wakeup() <= now and !scheduler.waiting(t):
//     scheduler.Request(t, TrackerHostKey(announcer.next_tracker_url()),
//                       AnnounceScheduler::PriorityFor(announcer.next_event(), needs_peers));
//   each loop turn: scheduler.Admit(now, &grants); for each grant, announcer.Poll and send (if
//     Poll returns nothing, Done at once); on the transport's result, scheduler.Done(grant.host),
//     also for a result the Announcer calls stale (Stop() drops the request it was waiting for,
//     but the connection was in use until then)
//   sleep no later than scheduler.NextTimeout(); Stop() of a torrent makes its announcer due, so
//     Request again at kStop (it replaces a waiting request); on removal, RemoveTorrent.
// Keep max_per_host at or below HttpFetcher's max_host_connections: a request beyond curl's cap
// waits in curl's queue with its timeout running.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/base/types.h"
#include "engine/tracker/http_announce.h"

namespace torrenty::engine {

// "scheme://host:port" of a tracker URL: scheme and host lower-cased, userinfo dropped, the
// default port filled in (http 80, https 443). Announces to one key share a host's caps. A URL
// that cannot be parsed is its own key.
std::string TrackerHostKey(std::string_view url);

class AnnounceScheduler {
 public:
  using TorrentId = uint64_t;
  static constexpr Instant kNever{std::numeric_limits<int64_t>::max()};

  enum class Priority : uint8_t { kStop = 0, kUrgent = 1, kRoutine = 2 };

  struct Config {
    // In flight per tracker host. udp:// hosts get their own cap: io's UdpTrackerTransport runs
    // one exchange per tracker at a time, and a second announce would abandon the first.
    int max_per_host = 4;
    int max_per_udp_host = 1;
    // In flight over the whole session.
    int max_in_flight = 64;
    // The first round of a bulk arrival is spread over min(interval_ms, max_spread_ms). The
    // interval is not known before a tracker answers; 30 min is the common default.
    int64_t interval_ms = 1'800'000;
    int64_t max_spread_ms = 600'000;
    // Torrents that may announce at once although no download is waiting for them: a burst of
    // `lone_burst`, refilled at one per `lone_refill_ms`. A torrent added on its own always finds
    // one; the thousands of a start-up use them up within the first few.
    int lone_burst = 4;
    int64_t lone_refill_ms = 1'000;
    uint64_t seed = 0;
  };

  struct Grant {
    TorrentId torrent = 0;
    // The host key the request was made for; hand it back to Done().
    std::string host;
  };

  explicit AnnounceScheduler(Config config);

  // Registers a torrent added at `now` and decides when its first announce may go out (see the
  // file comment): at once if `needs_peers` (a download with no peers) or while the burst of
  // immediate starts lasts, else a random point in the spread window. Returns that time. Adding
  // a torrent that is already known only returns its time.
  Instant AddTorrent(TorrentId torrent, Instant now, bool needs_peers);
  // Forgets a torrent and any request it has waiting. An announce of it already granted still
  // holds its slot until Done.
  void RemoveTorrent(TorrentId torrent);

  // `torrent`'s announcer has an announce due to tracker host `host` (TrackerHostKey). It waits
  // until its first-announce time (kStop requests do not) and for a free slot, then Admit grants
  // it. A torrent has at most one request waiting: a new Request replaces it (a stop that
  // follows a queued routine announce takes its place at the stop priority). A torrent never
  // added is registered without a hold.
  void Request(TorrentId torrent, std::string_view host, Priority priority);
  // Withdraws `torrent`'s waiting request, if any.
  void Cancel(TorrentId torrent);
  // Whether `torrent` has a request waiting (not yet granted).
  bool waiting(TorrentId torrent) const;

  // Grants, in order, every waiting request whose time has come and that fits the caps: highest
  // priority first, FIFO within a priority. Each grant holds a slot of its host until Done.
  void Admit(Instant now, std::vector<Grant>* out);
  // An announce granted for `host` finished (answered, failed, timed out, or was never sent).
  // Returns false, changing nothing, when `host` has nothing in flight.
  bool Done(std::string_view host);

  // When Admit can next grant something without a Done first: the earliest first-announce time
  // still held back, or kNever. A Done or Request can make a grant possible at once.
  Instant NextTimeout() const;

  int in_flight() const { return in_flight_; }
  int in_flight(std::string_view host) const;
  size_t waiting_count() const { return held_.size() + queued_count_; }

  // The priority an announce of `event` deserves; `needs_peers` marks a download without peers.
  static Priority PriorityFor(AnnounceEvent event, bool needs_peers);

 private:
  // (priority, FIFO sequence) orders the requests waiting for a host's slot.
  using QueueKey = std::pair<uint8_t, uint64_t>;
  struct Host {
    std::string key;
    int cap = 1;
    int in_flight = 0;
    std::map<QueueKey, TorrentId> queue;
  };
  struct Torrent {
    Instant first_at{0};
    bool first_done = false;
    // Waiting request: held until first_at, then queued on `host`.
    enum class State : uint8_t { kIdle, kHeld, kQueued } state = State::kIdle;
    std::string host;
    Priority priority = Priority::kRoutine;
    QueueKey queue_key{};
  };

  Host& HostFor(std::string_view key);
  void Enqueue(TorrentId id, Torrent& t);
  void Unlink(TorrentId id, Torrent& t);
  // Keeps `ready_` holding each host's head request while the host has a free slot.
  void RefreshReady(Host& host);
  void DropIfIdle(std::string_view key);

  Config config_;
  std::mt19937_64 rng_;
  absl::flat_hash_map<TorrentId, Torrent> torrents_;
  absl::flat_hash_map<std::string, Host> hosts_;
  // Requests held until their first-announce time, by (that time, sequence, torrent).
  std::set<std::tuple<int64_t, uint64_t, TorrentId>> held_;
  // Heads of the hosts that have a free slot, by (priority, sequence): the next grant is
  // ready_.begin() while the session-wide cap allows.
  std::set<std::pair<QueueKey, std::string>> ready_;
  absl::flat_hash_map<std::string, QueueKey> ready_key_;  // host -> its entry in ready_
  size_t queued_count_ = 0;
  uint64_t next_seq_ = 0;
  int in_flight_ = 0;
  // Immediate-start tokens, scaled by lone_refill_ms so refills stay integral.
  int64_t lone_tokens_ms_ = 0;
  int64_t lone_last_ms_ = 0;
};

}  // namespace torrenty::engine
