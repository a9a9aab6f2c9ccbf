// Tests for the session-wide announce admission (engine/tracker/announce_scheduler.h), driving
// real engine::Announcers on virtual time.
#include "engine/tracker/announce_scheduler.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "engine/tracker/announcer.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using Priority = AnnounceScheduler::Priority;

constexpr char kHost[] = "http://tracker.example:6969";

std::string OkBody(int64_t interval) {
  return "d8:intervali" + std::to_string(interval) + "e5:peers0:e";
}

Announcer::Config ConfigFor(uint64_t n) {
  Announcer::Config c;
  for (size_t i = 0; i < c.info_hash.size(); ++i) c.info_hash[i] = static_cast<uint8_t>(n >> i);
  c.peer_id.fill('p');
  c.port = 6881;
  return c;
}

std::vector<AnnounceScheduler::Grant> Admit(AnnounceScheduler& s, int64_t ms) {
  std::vector<AnnounceScheduler::Grant> grants;
  s.Admit(Instant{ms}, &grants);
  return grants;
}

std::vector<uint64_t> Ids(const std::vector<AnnounceScheduler::Grant>& grants) {
  std::vector<uint64_t> ids;
  for (const auto& g : grants) ids.push_back(g.torrent);
  return ids;
}

TEST(TrackerHostKeyTest, SchemeHostPort) {
  EXPECT_EQ(TrackerHostKey("http://Tracker.Example/announce?x=1"), "http://tracker.example:80");
  EXPECT_EQ(TrackerHostKey("HTTPS://t.example/a"), "https://t.example:443");
  EXPECT_EQ(TrackerHostKey("http://user:pw@t.example:8080/a"), "http://t.example:8080");
  EXPECT_EQ(TrackerHostKey("udp://t.example:6969/announce"), "udp://t.example:6969");
  EXPECT_EQ(TrackerHostKey("http://[::1]:6969/a"), "http://[::1]:6969");
  EXPECT_EQ(TrackerHostKey("http://[::1]/a"), "http://[::1]:80");
  // Same host, other port or scheme: another host for the caps.
  EXPECT_NE(TrackerHostKey("http://t.example/a"), TrackerHostKey("https://t.example/a"));
  EXPECT_NE(TrackerHostKey("http://t.example:81/a"), TrackerHostKey("http://t.example/a"));
  // Unparseable: its own key.
  EXPECT_EQ(TrackerHostKey("udp://t.example"), "udp://t.example");
  EXPECT_EQ(TrackerHostKey("http://t.example:99999/"), "http://t.example:99999/");
  EXPECT_EQ(TrackerHostKey("garbage"), "garbage");
}

TEST(AnnounceSchedulerTest, LoneTorrentAnnouncesAtOnce) {
  AnnounceScheduler s({});
  Announcer an(ConfigFor(1), {{"http://tracker.example:6969/announce"}}, 1);
  const Instant now{5'000'000};
  EXPECT_EQ(s.AddTorrent(1, now, /*needs_peers=*/false), now);
  ASSERT_LE(an.next_wakeup(), now);
  EXPECT_EQ(an.next_event(), AnnounceEvent::kStarted);
  s.Request(1, TrackerHostKey(an.next_tracker_url()),
            AnnounceScheduler::PriorityFor(an.next_event(), false));
  std::vector<AnnounceScheduler::Grant> grants = Admit(s, now.ms);
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].torrent, 1u);
  EXPECT_EQ(grants[0].host, kHost);
  EXPECT_TRUE(an.Poll(now, {}).has_value());
  EXPECT_EQ(s.in_flight(kHost), 1);
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(s.in_flight(), 0);
  EXPECT_FALSE(s.Done(kHost));  // Nothing left in flight: no effect.
}

TEST(AnnounceSchedulerTest, DownloadWithoutPeersStartsAtOnceEvenInABulkArrival) {
  AnnounceScheduler s({});
  for (uint64_t t = 0; t < 1000; ++t) s.AddTorrent(t, Instant{0}, false);
  EXPECT_EQ(s.AddTorrent(5000, Instant{10}, /*needs_peers=*/true), Instant{10});
  s.Request(5000, kHost, Priority::kUrgent);
  EXPECT_EQ(Ids(Admit(s, 10)), std::vector<uint64_t>{5000});
}

TEST(AnnounceSchedulerTest, BulkArrivalIsSpreadButLaterLoneAddIsImmediate) {
  AnnounceScheduler::Config c;
  c.lone_burst = 4;
  AnnounceScheduler s(c);
  int immediate = 0;
  for (uint64_t t = 0; t < 1000; ++t) {
    const Instant first = s.AddTorrent(t, Instant{0}, false);
    EXPECT_GE(first.ms, 0);
    EXPECT_LT(first.ms, c.max_spread_ms);
    immediate += first.ms == 0;
  }
  EXPECT_LE(immediate, c.lone_burst + 1);
  // The interval bounds the window when it is shorter than the cap.
  AnnounceScheduler::Config short_interval = c;
  short_interval.interval_ms = 60'000;
  AnnounceScheduler s2(short_interval);
  for (uint64_t t = 0; t < 1000; ++t) EXPECT_LT(s2.AddTorrent(t, Instant{0}, false).ms, 60'000);
  // A minute later a torrent added on its own goes at once.
  EXPECT_EQ(s.AddTorrent(9999, Instant{60'000}, false), Instant{60'000});
  // Re-adding a known torrent keeps its time.
  const Instant again = s.AddTorrent(500, Instant{70'000}, false);
  EXPECT_LT(again.ms, c.max_spread_ms);
}

TEST(AnnounceSchedulerTest, HeldRequestWaitsForItsTimeAndNextTimeoutSaysWhen) {
  AnnounceScheduler::Config c;
  c.lone_burst = 0;
  AnnounceScheduler s(c);
  EXPECT_EQ(s.NextTimeout(), AnnounceScheduler::kNever);
  const Instant first = s.AddTorrent(7, Instant{1000}, false);
  ASSERT_GT(first.ms, 1000);
  s.Request(7, kHost, Priority::kRoutine);
  EXPECT_TRUE(s.waiting(7));
  EXPECT_EQ(s.NextTimeout(), first);
  EXPECT_TRUE(Admit(s, first.ms - 1).empty());
  EXPECT_EQ(Ids(Admit(s, first.ms)), std::vector<uint64_t>{7});
  EXPECT_FALSE(s.waiting(7));
  EXPECT_EQ(s.NextTimeout(), AnnounceScheduler::kNever);
  // Only the first announce is held: the next one is queued at once.
  EXPECT_TRUE(s.Done(kHost));
  s.Request(7, kHost, Priority::kRoutine);
  EXPECT_EQ(Ids(Admit(s, first.ms + 1)), std::vector<uint64_t>{7});
}

TEST(AnnounceSchedulerTest, PerHostAndGlobalCaps) {
  AnnounceScheduler::Config c;
  c.max_per_host = 3;
  c.max_per_udp_host = 1;
  c.max_in_flight = 5;
  AnnounceScheduler s(c);
  for (uint64_t t = 0; t < 10; ++t) s.Request(t, "http://a:80", Priority::kRoutine);
  for (uint64_t t = 10; t < 20; ++t) s.Request(t, "udp://u:6969", Priority::kRoutine);
  for (uint64_t t = 20; t < 30; ++t) s.Request(t, "http://b:80", Priority::kRoutine);
  std::vector<AnnounceScheduler::Grant> grants = Admit(s, 0);
  EXPECT_EQ(grants.size(), 5u);
  EXPECT_EQ(s.in_flight(), 5);
  EXPECT_EQ(s.in_flight("http://a:80"), 3);  // FIFO: host a's first three.
  EXPECT_EQ(s.in_flight("udp://u:6969"), 1);
  EXPECT_EQ(s.in_flight("http://b:80"), 1);
  EXPECT_TRUE(Admit(s, 0).empty());
  // Freeing a slot of host a: the global slot goes to the oldest request that fits (udp is at
  // its cap of one, so host b's).
  EXPECT_TRUE(s.Done("http://a:80"));
  grants = Admit(s, 0);
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].host, "http://a:80");
  EXPECT_EQ(grants[0].torrent, 3u);
  EXPECT_EQ(s.waiting_count(), 24u);
}

TEST(AnnounceSchedulerTest, FifoWithinAPriority) {
  AnnounceScheduler::Config c;
  c.max_per_host = 1;
  AnnounceScheduler s(c);
  const std::vector<uint64_t> order = {9, 3, 7, 1, 8};
  for (uint64_t t : order) s.Request(t, kHost, Priority::kRoutine);
  std::vector<uint64_t> granted;
  for (size_t i = 0; i < order.size(); ++i) {
    std::vector<uint64_t> ids = Ids(Admit(s, 0));
    ASSERT_EQ(ids.size(), 1u);
    granted.push_back(ids[0]);
    EXPECT_TRUE(s.Done(kHost));
  }
  EXPECT_EQ(granted, order);
}

TEST(AnnounceSchedulerTest, StopGoesAheadOfTheQueue) {
  AnnounceScheduler::Config c;
  c.max_per_host = 2;
  c.max_in_flight = 2;
  AnnounceScheduler s(c);
  for (uint64_t t = 0; t < 1000; ++t) s.Request(t, kHost, Priority::kRoutine);
  EXPECT_EQ(Admit(s, 0).size(), 2u);
  // A stop on the busy host waits for the next free slot only, not behind 998 others.
  s.Request(5000, kHost, Priority::kStop);
  // An urgent one too, but after the stop.
  s.Request(5001, kHost, Priority::kUrgent);
  EXPECT_TRUE(Admit(s, 0).empty());
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{5000});
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{5001});
  // A stop for another host is not stuck behind this host's queue once a global slot frees.
  s.Request(6000, "http://other:80", Priority::kStop);
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{6000});
  // A torrent stopping while its routine announce waits: one request, now at stop priority.
  const size_t waiting = s.waiting_count();
  s.Request(999, kHost, Priority::kStop);
  EXPECT_EQ(s.waiting_count(), waiting);
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{999});
}

TEST(AnnounceSchedulerTest, StopIsNotHeldBackBySpread) {
  AnnounceScheduler::Config c;
  c.lone_burst = 0;
  AnnounceScheduler s(c);
  ASSERT_GT(s.AddTorrent(1, Instant{0}, false).ms, 0);
  s.Request(1, kHost, Priority::kRoutine);
  EXPECT_TRUE(Admit(s, 0).empty());
  s.Request(1, kHost, Priority::kStop);
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{1});
  EXPECT_EQ(s.NextTimeout(), AnnounceScheduler::kNever);
}

TEST(AnnounceSchedulerTest, CancelAndRemoveWithdrawRequests) {
  AnnounceScheduler::Config c;
  c.max_per_host = 1;
  AnnounceScheduler s(c);
  s.Request(1, kHost, Priority::kRoutine);
  s.Request(2, kHost, Priority::kRoutine);
  s.Request(3, kHost, Priority::kRoutine);
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{1});
  s.Cancel(2);
  s.RemoveTorrent(1);  // Granted already: its slot stays held until Done.
  EXPECT_TRUE(Admit(s, 0).empty());
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(Ids(Admit(s, 0)), std::vector<uint64_t>{3});
  EXPECT_TRUE(s.Done(kHost));
  EXPECT_EQ(s.waiting_count(), 0u);
  EXPECT_FALSE(s.Done("http://never:80"));
}

// A session's announce loop on virtual time: `n` torrents on one tracker, each announce taking
// `latency_ms`, the tracker answering with `interval_s`. Records every grant time.
struct Sim {
  AnnounceScheduler scheduler;
  std::vector<std::unique_ptr<Announcer>> announcers;
  std::vector<int64_t> grant_ms;
  std::vector<bool> needs_peers;
  int max_in_flight = 0;
  int max_in_flight_host = 0;

  Sim(AnnounceScheduler::Config config, int n, bool downloads) : scheduler(config) {
    for (int i = 0; i < n; ++i) {
      announcers.push_back(std::make_unique<Announcer>(
          ConfigFor(i), std::vector<std::vector<std::string>>{{"http://tracker.example:6969/a"}},
          i));
      needs_peers.push_back(downloads);
    }
  }

  void Run(int64_t until_ms, int64_t latency_ms, int64_t interval_s) {
    struct Done {
      int64_t at;
      uint64_t torrent;
      uint64_t request;
      std::string host;
      bool operator>(const Done& o) const { return at > o.at; }
    };
    std::priority_queue<Done, std::vector<Done>, std::greater<>> in_flight;
    // Announcer wake-ups, as a session keeps them instead of scanning every torrent.
    using Wake = std::pair<int64_t, uint64_t>;
    std::priority_queue<Wake, std::vector<Wake>, std::greater<>> wakes;
    for (size_t t = 0; t < announcers.size(); ++t) {
      scheduler.AddTorrent(t, Instant{0}, needs_peers[t]);
      wakes.emplace(announcers[t]->next_wakeup().ms, t);
    }
    int64_t now = 0;
    while (now <= until_ms) {
      // Completions due now, then requests from announcers that are due, then grants.
      while (!in_flight.empty() && in_flight.top().at <= now) {
        Done d = in_flight.top();
        in_flight.pop();
        ASSERT_TRUE(
            announcers[d.torrent]->HandleResult(d.request, OkBody(interval_s), Instant{now}).ok());
        ASSERT_TRUE(scheduler.Done(d.host));
        wakes.emplace(announcers[d.torrent]->next_wakeup().ms, d.torrent);
      }
      while (!wakes.empty() && wakes.top().first <= now) {
        const uint64_t t = wakes.top().second;
        wakes.pop();
        if (announcers[t]->next_wakeup().ms > now || scheduler.waiting(t)) continue;
        scheduler.Request(
            t, TrackerHostKey(announcers[t]->next_tracker_url()),
            AnnounceScheduler::PriorityFor(announcers[t]->next_event(), needs_peers[t]));
      }
      int64_t next = wakes.empty() ? std::numeric_limits<int64_t>::max() : wakes.top().first;
      std::vector<AnnounceScheduler::Grant> grants;
      scheduler.Admit(Instant{now}, &grants);
      for (const AnnounceScheduler::Grant& g : grants) {
        std::optional<PendingAnnounce> a = announcers[g.torrent]->Poll(Instant{now}, {});
        ASSERT_TRUE(a.has_value());
        grant_ms.push_back(now);
        in_flight.push(Done{now + latency_ms, g.torrent, a->id, g.host});
      }
      max_in_flight = std::max(max_in_flight, static_cast<int>(in_flight.size()));
      max_in_flight_host = std::max(max_in_flight_host, scheduler.in_flight(kHost));
      ASSERT_EQ(scheduler.in_flight(), static_cast<int>(in_flight.size()));
      if (!in_flight.empty()) next = std::min(next, in_flight.top().at);
      next = std::min(next, scheduler.NextTimeout().ms);
      if (next == std::numeric_limits<int64_t>::max()) break;
      ASSERT_GT(next, now);
      now = next;
    }
  }

  // Grants in [from, to) counted in `bins` equal bins.
  std::vector<int> Histogram(int64_t from, int64_t to, int bins) const {
    std::vector<int> h(bins);
    for (int64_t ms : grant_ms) {
      if (ms < from || ms >= to) continue;
      ++h[(ms - from) * bins / (to - from)];
    }
    return h;
  }
};

TEST(AnnounceSchedulerTest, TenThousandSeedsOnOneTrackerAreCappedAndSpread) {
  AnnounceScheduler::Config c;
  c.max_per_host = 4;
  c.max_in_flight = 64;
  c.max_spread_ms = 600'000;
  c.seed = 42;
  Sim sim(c, 10'000, /*downloads=*/false);
  // 100 ms per announce, 4 at a time: 40/s of capacity for 10,000 / 600 s = 17/s.
  sim.Run(/*until_ms=*/3'000'000, /*latency_ms=*/100, /*interval_s=*/1800);
  EXPECT_EQ(sim.max_in_flight_host, 4);
  EXPECT_LE(sim.max_in_flight, 4);
  // First round: everyone once, over the window, flat (20 bins of 30 s, 500 expected in each).
  const std::vector<int> first = sim.Histogram(0, 600'000, 20);
  int total = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    total += first[i];
    EXPECT_GT(first[i], 500 * 0.85) << "bin " << i;
    EXPECT_LT(first[i], 500 * 1.15) << "bin " << i;
  }
  EXPECT_EQ(total, 10'000);
  std::string shown;
  for (int n : first) shown += " " + std::to_string(n);
  std::cout << "first announces per 30 s:" << shown << "\n";
  // The second round keeps the phases: one interval (plus the 100 ms answer) later, as flat.
  const std::vector<int> second = sim.Histogram(1'800'100, 2'400'100, 20);
  total = 0;
  for (size_t i = 0; i < second.size(); ++i) {
    total += second[i];
    EXPECT_GT(second[i], 500 * 0.85) << "bin " << i;
    EXPECT_LT(second[i], 500 * 1.15) << "bin " << i;
  }
  EXPECT_EQ(total, 10'000);
}

TEST(AnnounceSchedulerTest, TenThousandDownloadsStartAtOnceButNeverExceedTheCap) {
  AnnounceScheduler::Config c;
  c.max_per_host = 4;
  Sim sim(c, 10'000, /*downloads=*/true);
  sim.Run(/*until_ms=*/600'000, /*latency_ms=*/50, /*interval_s=*/1800);
  EXPECT_EQ(sim.max_in_flight_host, 4);
  EXPECT_LE(sim.max_in_flight, 4);
  // All queued at 0 and served back to back, 4 per 50 ms: done in 125 s.
  ASSERT_EQ(sim.grant_ms.size(), 10'000u);
  EXPECT_EQ(sim.grant_ms.front(), 0);
  EXPECT_EQ(sim.grant_ms.back(), (10'000 / 4 - 1) * 50);
}

}  // namespace
}  // namespace torrenty::engine
