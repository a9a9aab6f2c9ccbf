// Tests for the sans-I/O announce scheduler (engine/tracker/announcer.h).
#include "engine/tracker/announcer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string OkBody(int64_t interval, int64_t min_interval = 0) {
  std::string body = "d8:intervali" + std::to_string(interval) + "e";
  if (min_interval > 0) body += "12:min intervali" + std::to_string(min_interval) + "e";
  return body + "5:peers6:" + std::string("\x0a\x00\x00\x01\x1a\xe1", 6) + "e";
}

Announcer::Config TestConfig() {
  Announcer::Config c;
  c.info_hash.fill(0xab);
  c.peer_id.fill('p');
  c.port = 6881;
  return c;
}

// The tracker base URL an announce went to (everything before the query).
std::string Base(const PendingAnnounce& a) { return a.url.substr(0, a.url.find('?')); }

Instant At(int64_t seconds) { return Instant{seconds * 1000}; }

TEST(AnnouncerTest, FiltersTrackers) {
  // udp:// without a port is not a usable tracker; wss:// is not supported.
  Announcer none(TestConfig(), {{"udp://u.example"}, {"wss://w.example", ""}}, 1);
  EXPECT_FALSE(none.has_trackers());
  EXPECT_TRUE(none.udp_trackers().empty());
  EXPECT_FALSE(none.Poll(At(0), {}).has_value());
  EXPECT_EQ(none.next_wakeup(), Announcer::kNever);

  Announcer udp_only(TestConfig(), {{"udp://u.example:80"}, {"wss://w.example", ""}}, 1);
  EXPECT_TRUE(udp_only.has_trackers());
  EXPECT_TRUE(udp_only.has_udp_trackers());
  EXPECT_FALSE(udp_only.has_http_trackers());
  EXPECT_EQ(udp_only.udp_trackers(), std::vector<std::string>{"udp://u.example:80"});

  Announcer some(TestConfig(), {{" http://a.example/ann "}, {"udp://u.example:80"}}, 1);
  EXPECT_TRUE(some.has_trackers());
  EXPECT_TRUE(some.has_http_trackers());
  EXPECT_TRUE(some.has_udp_trackers());
  std::optional<PendingAnnounce> a = some.Poll(At(0), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->transport, PendingAnnounce::Transport::kHttp);
  EXPECT_EQ(Base(*a), "http://a.example/ann");
}

AnnounceResponse UdpOk(int64_t interval) {
  AnnounceResponse r;
  r.interval = interval;
  r.complete = 1;
  r.incomplete = 2;
  r.peers.push_back(PeerAddress{0x0a000001, 6881});
  return r;
}

TEST(AnnouncerTest, UdpAnnounceCarriesEndpointAndParams) {
  Announcer an(TestConfig(), {{"udp://tracker.example:6969/announce"}}, 7);
  std::optional<PendingAnnounce> a = an.Poll(At(0), TransferStats{1, 2, 3});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->transport, PendingAnnounce::Transport::kUdp);
  EXPECT_EQ(a->url, "udp://tracker.example:6969/announce");
  EXPECT_EQ(a->udp_host, "tracker.example");
  EXPECT_EQ(a->udp_port, 6969);
  EXPECT_EQ(a->event, AnnounceEvent::kStarted);
  EXPECT_EQ(a->params.event, AnnounceEvent::kStarted);
  EXPECT_EQ(a->params.info_hash, TestConfig().info_hash);
  EXPECT_EQ(a->params.peer_id, TestConfig().peer_id);
  EXPECT_EQ(a->params.port, 6881);
  EXPECT_EQ(a->params.uploaded, 1);
  EXPECT_EQ(a->params.downloaded, 2);
  EXPECT_EQ(a->params.left, 3);
  EXPECT_EQ(a->params.numwant, 200);
  // The only tracker: the full BEP 15 retransmission schedule.
  EXPECT_EQ(a->udp_max_retransmits, Announcer::kUdpMaxRetransmits);
  EXPECT_FALSE(an.Poll(At(0), {}).has_value());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);

  absl::StatusOr<AnnounceResponse> r = an.HandleUdpResult(a->id, UdpOk(900), At(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(an.next_wakeup(), At(901));
  a = an.Poll(At(901), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kNone);
  // A stale id (already answered) changes nothing.
  EXPECT_EQ(an.HandleUdpResult(a->id + 5, UdpOk(60), At(902)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A BEP 15 error counts as a failure: backoff (the only tracker).
  AnnounceResponse err;
  err.failure_reason = "unregistered torrent";
  r = an.HandleUdpResult(a->id, err, At(902));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("unregistered torrent"));
  EXPECT_THAT(r.status().message(), HasSubstr("udp://tracker.example:6969/announce"));
  EXPECT_EQ(an.next_wakeup(), At(902 + 15));
}

TEST(AnnouncerTest, MixedTierUdpFailureFallsThroughToHttp) {
  Announcer an(TestConfig(),
               {{"udp://u.example:6969", "http://a.example/ann"}, {"http://c.example/ann"}}, 3);
  EXPECT_TRUE(an.has_http_trackers());
  EXPECT_TRUE(an.has_udp_trackers());
  // First sweep: both tier-0 trackers in shuffled order, then tier 1; everything fails.
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    std::optional<PendingAnnounce> a = an.Poll(At(0), {});
    ASSERT_TRUE(a.has_value()) << i;
    EXPECT_EQ(a->event, AnnounceEvent::kStarted);
    absl::StatusOr<AnnounceResponse> r;
    if (a->transport == PendingAnnounce::Transport::kUdp) {
      order.push_back(a->url);
      // Other trackers to fall through to: give up on a silent UDP tracker early.
      EXPECT_EQ(a->udp_max_retransmits, Announcer::kUdpRetransmitsWithFallback);
      r = an.HandleUdpResult(a->id, absl::DeadlineExceededError("no answer"), At(0));
    } else {
      order.push_back(Base(*a));
      r = an.HandleResult(a->id, absl::UnavailableError("refused"), At(0));
    }
    EXPECT_FALSE(r.ok());
  }
  EXPECT_THAT(std::vector<std::string>(order.begin(), order.begin() + 2),
              UnorderedElementsAre("udp://u.example:6969", "http://a.example/ann"));
  EXPECT_EQ(order[2], "http://c.example/ann");
  EXPECT_EQ(an.next_wakeup(), At(15));

  // Second sweep: the UDP tracker answers and moves to the front of tier 0; the http one
  // before it (if any) failed again.
  std::optional<PendingAnnounce> a = an.Poll(At(15), {});
  ASSERT_TRUE(a.has_value());
  if (a->transport == PendingAnnounce::Transport::kHttp) {
    EXPECT_FALSE(an.HandleResult(a->id, absl::UnavailableError("refused"), At(15)).ok());
    a = an.Poll(At(15), {});
    ASSERT_TRUE(a.has_value());
  }
  ASSERT_EQ(a->transport, PendingAnnounce::Transport::kUdp);
  ASSERT_TRUE(an.HandleUdpResult(a->id, UdpOk(100), At(16)).ok());
  EXPECT_EQ(an.next_wakeup(), At(116));
  a = an.Poll(At(116), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->transport, PendingAnnounce::Transport::kUdp);
  EXPECT_EQ(a->event, AnnounceEvent::kNone);
  // Now the UDP tracker fails: the http tracker of the same tier is tried at once.
  EXPECT_FALSE(an.HandleUdpResult(a->id, absl::DeadlineExceededError("t"), At(200)).ok());
  EXPECT_EQ(an.next_wakeup(), At(200));
  a = an.Poll(At(200), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->transport, PendingAnnounce::Transport::kHttp);
  EXPECT_EQ(Base(*a), "http://a.example/ann");
  EXPECT_EQ(a->event, AnnounceEvent::kStarted);  // It never acknowledged one.
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(300), At(201)).ok());
  // The http tracker now leads tier 0.
  a = an.Poll(At(501), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Base(*a), "http://a.example/ann");
}

TEST(AnnouncerTest, UdpStoppedAnnounceIsNotRetransmitted) {
  Announcer an(TestConfig(), {{"udp://127.0.0.1:6969"}}, 1);
  std::optional<PendingAnnounce> a = an.Poll(At(0), {});
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(an.HandleUdpResult(a->id, UdpOk(60), At(0)).ok());
  an.Stop(At(5));
  std::optional<PendingAnnounce> s = an.Poll(At(5), TransferStats{1, 2, 0});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->transport, PendingAnnounce::Transport::kUdp);
  EXPECT_EQ(s->event, AnnounceEvent::kStopped);
  EXPECT_EQ(s->params.event, AnnounceEvent::kStopped);
  EXPECT_EQ(s->params.numwant, 0);
  EXPECT_EQ(s->udp_max_retransmits, 0);
  EXPECT_FALSE(an.HandleUdpResult(s->id, absl::DeadlineExceededError("t"), At(20)).ok());
  EXPECT_FALSE(an.Poll(At(100), {}).has_value());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);
}

TEST(AnnouncerTest, StartedThenIntervalThenPlain) {
  Announcer an(TestConfig(), {{"http://a.example/ann"}}, 7);
  EXPECT_EQ(an.next_wakeup(), At(0));
  std::optional<PendingAnnounce> a = an.Poll(At(0), TransferStats{1, 2, 3});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kStarted);
  EXPECT_THAT(a->url, HasSubstr("&port=6881&uploaded=1&downloaded=2&left=3&compact=1"));
  EXPECT_THAT(a->url, HasSubstr("&event=started"));
  // Only one request in flight at a time.
  EXPECT_FALSE(an.Poll(At(0), {}).has_value());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);

  absl::StatusOr<AnnounceResponse> r = an.HandleResult(a->id, OkBody(1800), At(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(an.next_wakeup(), At(1 + 1800));
  EXPECT_FALSE(an.Poll(At(1800), {}).has_value());

  a = an.Poll(At(1801), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kNone);
  EXPECT_THAT(a->url, ::testing::Not(HasSubstr("event=")));
}

TEST(AnnouncerTest, IntervalIsClamped) {
  Announcer an(TestConfig(), {{"http://a.example/ann"}}, 7);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1), At(0)).ok());
  EXPECT_EQ(an.next_wakeup(), At(30));

  a = an.Poll(At(30), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(int64_t{1} << 60), At(30)).ok());
  EXPECT_EQ(an.next_wakeup(), At(30 + 3600));

  a = an.Poll(At(30 + 3600), {});
  // No interval at all: the default.
  ASSERT_TRUE(an.HandleResult(a->id, "d5:peers0:e", At(4000)).ok());
  EXPECT_EQ(an.next_wakeup(), Instant{4000 * 1000 + Announcer::kDefaultIntervalMs});
}

TEST(AnnouncerTest, TrackerIdIsEchoed) {
  Announcer an(TestConfig(), {{"http://a.example/ann"}}, 7);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, "d8:intervali60e5:peers0:10:tracker id3:xyze", At(0)).ok());
  a = an.Poll(At(60), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_THAT(a->url, HasSubstr("&trackerid=xyz"));
}

TEST(AnnouncerTest, TierFallthroughBackoffAndPromotion) {
  Announcer an(TestConfig(), {{"http://a.example/", "http://b.example/"}, {"http://c.example/"}},
               42);
  std::vector<std::string> order;
  // First sweep: both tier-0 trackers (in shuffled order), then tier 1, each tried at once.
  for (int i = 0; i < 3; ++i) {
    auto a = an.Poll(At(0), {});
    ASSERT_TRUE(a.has_value()) << i;
    EXPECT_EQ(a->event, AnnounceEvent::kStarted);
    order.push_back(Base(*a));
    absl::StatusOr<AnnounceResponse> r =
        an.HandleResult(a->id, absl::UnavailableError("connection refused"), At(0));
    EXPECT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr(Base(*a)));
  }
  EXPECT_THAT(std::vector<std::string>(order.begin(), order.begin() + 2),
              UnorderedElementsAre("http://a.example/", "http://b.example/"));
  EXPECT_EQ(order[2], "http://c.example/");

  // Everything failed: back off 15 s, then 30 s.
  EXPECT_EQ(an.next_wakeup(), At(15));
  EXPECT_FALSE(an.Poll(At(14), {}).has_value());
  for (int i = 0; i < 3; ++i) {
    auto a = an.Poll(At(15), {});
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(Base(*a), order[i]);  // The sweep order is stable.
    // A failure reason counts as a failure too.
    EXPECT_FALSE(an.HandleResult(a->id, std::string("d14:failure reason3:nahe"), At(15)).ok());
  }
  EXPECT_EQ(an.next_wakeup(), At(45));

  // Third sweep: the second tracker of tier 0 answers and moves to the front of its tier.
  auto a = an.Poll(At(45), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Base(*a), order[0]);
  EXPECT_FALSE(an.HandleResult(a->id, std::string("garbage"), At(45)).ok());
  a = an.Poll(At(45), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Base(*a), order[1]);
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(100), At(46)).ok());
  EXPECT_EQ(an.next_wakeup(), At(146));

  a = an.Poll(At(146), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Base(*a), order[1]);
  EXPECT_EQ(a->event, AnnounceEvent::kNone);  // It acknowledged started already.
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(100), At(146)).ok());
}

TEST(AnnouncerTest, BackoffDoublesUpToCap) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  int64_t now_ms = 0;
  int64_t expected_backoff = Announcer::kInitialBackoffMs;
  for (int i = 0; i < 12; ++i) {
    auto a = an.Poll(Instant{now_ms}, {});
    ASSERT_TRUE(a.has_value()) << i;
    EXPECT_EQ(a->event, AnnounceEvent::kStarted);  // Never acknowledged.
    EXPECT_FALSE(an.HandleResult(a->id, absl::DeadlineExceededError("t"), Instant{now_ms}).ok());
    EXPECT_EQ(an.next_wakeup(), Instant{now_ms + expected_backoff}) << i;
    now_ms += expected_backoff;
    expected_backoff = std::min(expected_backoff * 2, Announcer::kMaxBackoffMs);
  }
  EXPECT_EQ(expected_backoff, Announcer::kMaxBackoffMs);
  // A success resets the backoff.
  auto a = an.Poll(Instant{now_ms}, {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(60), Instant{now_ms}).ok());
  a = an.Poll(Instant{now_ms + 60'000}, {});
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(an.HandleResult(a->id, absl::DeadlineExceededError("t"), Instant{now_ms}).ok());
  EXPECT_EQ(an.next_wakeup(), Instant{now_ms + Announcer::kInitialBackoffMs});
}

TEST(AnnouncerTest, StaleResultIsIgnored) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  absl::StatusOr<AnnounceResponse> r = an.HandleResult(a->id + 1, OkBody(60), At(0));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);  // Still waiting for the real one.
  EXPECT_TRUE(an.HandleResult(a->id, OkBody(60), At(0)).ok());
  EXPECT_EQ(an.HandleResult(a->id, OkBody(60), At(0)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(AnnouncerTest, CompletedIsSentOnceImmediately) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(0)).ok());
  an.Completed(At(10));
  EXPECT_EQ(an.next_wakeup(), At(10));
  a = an.Poll(At(10), TransferStats{0, 100, 0});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kCompleted);
  EXPECT_THAT(a->url, HasSubstr("&left=0&"));
  EXPECT_THAT(a->url, HasSubstr("&event=completed"));
  // A failed completed announce is retried as completed.
  EXPECT_FALSE(an.HandleResult(a->id, absl::UnavailableError("x"), At(10)).ok());
  a = an.Poll(At(25), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kCompleted);
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(25)).ok());
  EXPECT_EQ(an.next_wakeup(), At(25 + 1800));
  a = an.Poll(At(25 + 1800), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kNone);
}

TEST(AnnouncerTest, CompletedDuringInFlightAnnounceFollowsIt) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  an.Completed(At(1));
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(2)).ok());
  EXPECT_EQ(an.next_wakeup(), At(2));
  a = an.Poll(At(2), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kCompleted);
}

TEST(AnnouncerTest, StopInterruptsInFlightAnnounce) {
  Announcer an(TestConfig(), {{"http://a.example/"}, {"http://b.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, absl::UnavailableError("down"), At(0)).ok() == false);
  auto b = an.Poll(At(0), {});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(Base(*b), "http://b.example/");
  ASSERT_TRUE(an.HandleResult(b->id, OkBody(60), At(0)).ok());
  // Next regular announce starts from tier 0 again (BEP 12) and is in flight when we stop.
  auto c = an.Poll(At(60), {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(Base(*c), "http://a.example/");
  an.Stop(At(61));
  EXPECT_EQ(an.next_wakeup(), At(61));
  auto s = an.Poll(At(61), TransferStats{5, 6, 7});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->event, AnnounceEvent::kStopped);
  // The goodbye goes to the tracker that last answered.
  EXPECT_EQ(Base(*s), "http://b.example/");
  EXPECT_THAT(s->url, HasSubstr("&numwant=0&event=stopped"));
  // The interrupted request's result is ignored.
  EXPECT_EQ(an.HandleResult(c->id, OkBody(60), At(62)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(an.HandleResult(s->id, std::string("d5:peers0:e"), At(62)).ok());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);
  EXPECT_FALSE(an.Poll(At(10'000), {}).has_value());
  an.Completed(At(10'000));
  an.NeedPeers(At(10'000));
  EXPECT_FALSE(an.Poll(At(10'000), {}).has_value());
}

TEST(AnnouncerTest, StopWaitsForCompletedUnderWay) {
  Announcer an(TestConfig(), {{"http://a.example/"}, {"http://b.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(0)).ok());
  an.Completed(At(10));
  auto c = an.Poll(At(10), TransferStats{0, 100, 0});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->event, AnnounceEvent::kCompleted);
  // Stopping while `completed` is under way: `stopped` must not overtake it.
  an.Stop(At(10));
  EXPECT_TRUE(an.stop_pending());
  EXPECT_FALSE(an.Poll(At(10), {}).has_value());
  ASSERT_TRUE(an.HandleResult(c->id, OkBody(1800), At(11)).ok());
  auto s = an.Poll(At(11), {});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->event, AnnounceEvent::kStopped);
  EXPECT_EQ(Base(*s), Base(*c));
  EXPECT_FALSE(an.stop_pending());
  EXPECT_TRUE(an.HandleResult(s->id, std::string("d5:peers0:e"), At(12)).ok());
  EXPECT_FALSE(an.Poll(At(10'000), {}).has_value());

  // A `completed` that fails is not retried: the goodbye follows at once.
  Announcer failing(TestConfig(), {{"http://a.example/"}}, 1);
  a = failing.Poll(At(0), {});
  ASSERT_TRUE(failing.HandleResult(a->id, OkBody(1800), At(0)).ok());
  failing.Completed(At(10));
  c = failing.Poll(At(10), {});
  failing.Stop(At(10));
  EXPECT_FALSE(failing.HandleResult(c->id, absl::UnavailableError("down"), At(11)).ok());
  s = failing.Poll(At(11), {});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->event, AnnounceEvent::kStopped);
}

TEST(AnnouncerTest, StopBeforeAnythingWasSentIsSilent) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  an.Stop(At(0));
  EXPECT_FALSE(an.Poll(At(0), {}).has_value());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);
}

TEST(AnnouncerTest, StoppedIsNotRetried) {
  Announcer an(TestConfig(), {{"http://a.example/"}, {"http://b.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  an.Stop(At(0));
  auto s = an.Poll(At(0), {});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->event, AnnounceEvent::kStopped);
  EXPECT_EQ(Base(*s), "http://a.example/");  // Nobody answered yet: the last one tried.
  EXPECT_FALSE(an.HandleResult(s->id, absl::DeadlineExceededError("t"), At(5)).ok());
  EXPECT_FALSE(an.Poll(At(100), {}).has_value());
  EXPECT_EQ(an.next_wakeup(), Announcer::kNever);
}

TEST(AnnouncerTest, NeedPeersRespectsMinInterval) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  an.NeedPeers(At(0));  // Before any success: no effect beyond the initial announce.
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800, 120), At(0)).ok());
  an.NeedPeers(At(10));
  EXPECT_EQ(an.next_wakeup(), At(120));
  EXPECT_FALSE(an.Poll(At(119), {}).has_value());
  a = an.Poll(At(120), {});
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(120)).ok());  // No min interval now.
  an.NeedPeers(At(500));
  EXPECT_EQ(an.next_wakeup(), At(500));  // Default min interval (30 s) long passed.
  a = an.Poll(At(500), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(1800), At(500)).ok());
  an.NeedPeers(At(501));
  EXPECT_EQ(an.next_wakeup(), At(530));
}

TEST(AnnouncerTest, NeedPeersDoesNotShortenBackoff) {
  Announcer an(TestConfig(), {{"http://a.example/"}}, 1);
  auto a = an.Poll(At(0), {});
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(60), At(0)).ok());
  a = an.Poll(At(60), {});
  ASSERT_FALSE(an.HandleResult(a->id, absl::UnavailableError("x"), At(60)).ok());
  an.NeedPeers(At(61));
  EXPECT_EQ(an.next_wakeup(), At(75));
}

TEST(AnnouncerTest, NextTrackerAndEventSayWhatPollWillSend) {
  Announcer an(TestConfig(), {{"http://a.example/ann"}, {"udp://u.example:6969"}}, 1);
  EXPECT_EQ(an.next_tracker_url(), "http://a.example/ann");
  EXPECT_EQ(an.next_event(), AnnounceEvent::kStarted);
  std::optional<PendingAnnounce> a = an.Poll(At(0), {});
  ASSERT_TRUE(a.has_value());
  ASSERT_FALSE(an.HandleResult(a->id, absl::UnavailableError("down"), At(0)).ok());
  // Failed over to the next tier.
  EXPECT_EQ(an.next_tracker_url(), "udp://u.example:6969");
  EXPECT_EQ(an.next_event(), AnnounceEvent::kStarted);
  a = an.Poll(At(0), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->url, "udp://u.example:6969");
  ASSERT_TRUE(an.HandleUdpResult(a->id, UdpOk(900), At(1)).ok());
  // BEP 12: the next announce starts again at tier 0, whose tracker has not heard `started`.
  EXPECT_EQ(an.next_tracker_url(), "http://a.example/ann");
  EXPECT_EQ(an.next_event(), AnnounceEvent::kStarted);
  an.Completed(At(2));
  EXPECT_EQ(an.next_event(), AnnounceEvent::kCompleted);
  a = an.Poll(At(2), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kCompleted);
  EXPECT_EQ(Base(*a), an.next_tracker_url());
  ASSERT_TRUE(an.HandleResult(a->id, OkBody(900), At(3)).ok());
  EXPECT_EQ(an.next_event(), AnnounceEvent::kNone);
  an.Stop(At(4));
  EXPECT_EQ(an.next_event(), AnnounceEvent::kStopped);
  EXPECT_EQ(an.next_tracker_url(), "http://a.example/ann");  // The tracker that last answered.
  a = an.Poll(At(4), {});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->event, AnnounceEvent::kStopped);

  Announcer none(TestConfig(), {}, 1);
  EXPECT_EQ(none.next_tracker_url(), "");
}

TEST(AnnouncerTest, ShuffleDependsOnSeedAndDeduplicates) {
  std::vector<std::string> tier;
  for (int i = 0; i < 8; ++i) tier.push_back("http://t" + std::to_string(i) + ".example/");
  tier.push_back("http://t0.example/");
  auto first_tracker = [&](uint64_t seed) {
    Announcer an(TestConfig(), {tier}, seed);
    auto a = an.Poll(At(0), {});
    return Base(*a);
  };
  EXPECT_EQ(first_tracker(3), first_tracker(3));
  bool differs = false;
  for (uint64_t seed = 0; seed < 20 && !differs; ++seed) {
    differs = first_tracker(seed) != first_tracker(seed + 1);
  }
  EXPECT_TRUE(differs);

  // Nine entries, eight distinct trackers: a full failing sweep takes eight requests.
  Announcer an(TestConfig(), {tier}, 5);
  for (int i = 0; i < 8; ++i) {
    auto a = an.Poll(At(0), {});
    ASSERT_TRUE(a.has_value()) << i;
    EXPECT_FALSE(an.HandleResult(a->id, absl::UnavailableError("x"), At(0)).ok());
  }
  EXPECT_EQ(an.next_wakeup(), At(15));
}

}  // namespace
}  // namespace torrenty::engine
