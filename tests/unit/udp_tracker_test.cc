// Tests for the BEP 15 codec and exchange (engine/tracker/udp_tracker.h) and for
// UdpTrackerTransport (io/tracker/udp_tracker_transport.h) against a fake tracker socket on
// loopback.
#include "engine/tracker/udp_tracker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/ring/ring.h"
#include "io/tracker/udp_tracker_transport.h"

namespace torrenty::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = UdpTrackerExchange::Step::Kind;

void Put32(std::vector<uint8_t>* v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v->push_back(static_cast<uint8_t>(x >> s));
}
void Put64(std::vector<uint8_t>* v, uint64_t x) {
  Put32(v, static_cast<uint32_t>(x >> 32));
  Put32(v, static_cast<uint32_t>(x));
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t Get64(const uint8_t* p) { return (uint64_t{Get32(p)} << 32) | Get32(p + 4); }

std::vector<uint8_t> ConnectResponse(uint32_t tid, uint64_t conn_id) {
  std::vector<uint8_t> v;
  Put32(&v, 0);
  Put32(&v, tid);
  Put64(&v, conn_id);
  return v;
}

std::vector<uint8_t> AnnounceResponseBytes(uint32_t tid, uint32_t interval, uint32_t leechers,
                                           uint32_t seeders,
                                           const std::vector<PeerAddress>& peers) {
  std::vector<uint8_t> v;
  Put32(&v, 1);
  Put32(&v, tid);
  Put32(&v, interval);
  Put32(&v, leechers);
  Put32(&v, seeders);
  for (const PeerAddress& p : peers) {
    Put32(&v, p.ip);
    v.push_back(static_cast<uint8_t>(p.port >> 8));
    v.push_back(static_cast<uint8_t>(p.port));
  }
  return v;
}

std::vector<uint8_t> ErrorResponse(uint32_t tid, const std::string& message) {
  std::vector<uint8_t> v;
  Put32(&v, 3);
  Put32(&v, tid);
  v.insert(v.end(), message.begin(), message.end());
  return v;
}

AnnounceParams TestParams() {
  AnnounceParams p;
  p.info_hash.fill(0xab);
  p.peer_id.fill('p');
  p.port = 6881;
  p.uploaded = 1000;
  p.downloaded = 2000;
  p.left = 3000;
  p.numwant = 50;
  p.event = AnnounceEvent::kStarted;
  return p;
}

Instant At(int64_t ms) { return Instant{ms}; }

// --------------------------------------------------------------------------------- codec

TEST(UdpTrackerCodecTest, ConnectRequestLayout) {
  uint8_t out[kUdpConnectRequestSize];
  EncodeConnectRequest(0xdeadbeef, out);
  EXPECT_EQ(Get64(out), 0x41727101980u);
  EXPECT_EQ(Get32(out + 8), 0u);
  EXPECT_EQ(Get32(out + 12), 0xdeadbeefu);
}

TEST(UdpTrackerCodecTest, AnnounceRequestLayout) {
  uint8_t out[kUdpAnnounceRequestSize];
  AnnounceParams p = TestParams();
  EncodeAnnounceRequest(0x0102030405060708, 77, p, 0xcafef00d, out);
  EXPECT_EQ(Get64(out), 0x0102030405060708u);
  EXPECT_EQ(Get32(out + 8), 1u);
  EXPECT_EQ(Get32(out + 12), 77u);
  EXPECT_EQ(std::memcmp(out + 16, p.info_hash.data(), 20), 0);
  EXPECT_EQ(std::memcmp(out + 36, p.peer_id.data(), 20), 0);
  EXPECT_EQ(Get64(out + 56), 2000u);  // downloaded
  EXPECT_EQ(Get64(out + 64), 3000u);  // left
  EXPECT_EQ(Get64(out + 72), 1000u);  // uploaded
  EXPECT_EQ(Get32(out + 80), 2u);     // started
  EXPECT_EQ(Get32(out + 84), 0u);     // ip
  EXPECT_EQ(Get32(out + 88), 0xcafef00du);
  EXPECT_EQ(Get32(out + 92), 50u);
  EXPECT_EQ(out[96], 6881 >> 8);
  EXPECT_EQ(out[97], 6881 & 255);

  const std::pair<AnnounceEvent, uint32_t> events[] = {{AnnounceEvent::kNone, 0},
                                                       {AnnounceEvent::kCompleted, 1},
                                                       {AnnounceEvent::kStarted, 2},
                                                       {AnnounceEvent::kStopped, 3}};
  for (auto [event, code] : events) {
    p.event = event;
    EncodeAnnounceRequest(1, 2, p, 3, out);
    EXPECT_EQ(Get32(out + 80), code);
  }
  p.numwant = -1;
  p.left = -5;
  EncodeAnnounceRequest(1, 2, p, 3, out);
  EXPECT_EQ(Get32(out + 92), 0xFFFFFFFFu);
  EXPECT_EQ(Get64(out + 64), 0u);
}

TEST(UdpTrackerCodecTest, ParsesConnectResponseExactly16Bytes) {
  std::vector<uint8_t> v = ConnectResponse(42, 0x1122334455667788);
  absl::StatusOr<UdpTrackerResponse> r = ParseUdpTrackerResponse(v);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->action, UdpAction::kConnect);
  EXPECT_EQ(r->transaction_id, 42u);
  EXPECT_EQ(r->connection_id, 0x1122334455667788u);

  std::vector<uint8_t> short_v(v.begin(), v.end() - 1);
  EXPECT_FALSE(ParseUdpTrackerResponse(short_v).ok());
  v.push_back(0);
  EXPECT_FALSE(ParseUdpTrackerResponse(v).ok());
}

TEST(UdpTrackerCodecTest, ParsesAnnounceResponse) {
  std::vector<uint8_t> v = AnnounceResponseBytes(
      7, 1800, 3, 4, {{0x7f000001, 6881}, {0x0a000002, 0}, {0xc0a80101, 51413}});
  absl::StatusOr<UdpTrackerResponse> r = ParseUdpTrackerResponse(v);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->action, UdpAction::kAnnounce);
  EXPECT_EQ(r->transaction_id, 7u);
  EXPECT_EQ(r->announce.interval, 1800);
  EXPECT_EQ(r->announce.incomplete, 3);
  EXPECT_EQ(r->announce.complete, 4);
  // Port 0 is skipped.
  EXPECT_THAT(r->announce.peers,
              ElementsAre(PeerAddress{0x7f000001, 6881}, PeerAddress{0xc0a80101, 51413}));

  // No peers at all is fine; a partial peer or a truncated header is not.
  EXPECT_TRUE(ParseUdpTrackerResponse(AnnounceResponseBytes(7, 1, 0, 0, {})).ok());
  for (size_t cut : {1, 2, 5}) {
    std::vector<uint8_t> bad(v.begin(), v.end() - static_cast<ptrdiff_t>(cut));
    EXPECT_FALSE(ParseUdpTrackerResponse(bad).ok()) << cut;
  }
  std::vector<uint8_t> header_only = AnnounceResponseBytes(7, 1, 0, 0, {});
  header_only.pop_back();
  EXPECT_FALSE(ParseUdpTrackerResponse(header_only).ok());
  v.push_back(1);
  EXPECT_FALSE(ParseUdpTrackerResponse(v).ok());
}

TEST(UdpTrackerCodecTest, PeerCountIsCapped) {
  std::vector<PeerAddress> peers(kMaxPeersPerAnnounce + 10, PeerAddress{0x0a000001, 1});
  absl::StatusOr<UdpTrackerResponse> r =
      ParseUdpTrackerResponse(AnnounceResponseBytes(1, 60, 0, 0, peers));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->announce.peers.size(), kMaxPeersPerAnnounce);
}

TEST(UdpTrackerCodecTest, ParsesErrorAndRejectsOthers) {
  absl::StatusOr<UdpTrackerResponse> r = ParseUdpTrackerResponse(ErrorResponse(9, "go away"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->action, UdpAction::kError);
  EXPECT_EQ(r->transaction_id, 9u);
  EXPECT_EQ(r->error_message, "go away");
  r = ParseUdpTrackerResponse(ErrorResponse(9, std::string(5000, 'x')));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error_message.size(), kMaxTrackerMessageBytes);

  std::vector<uint8_t> scrape;
  Put32(&scrape, 2);
  Put32(&scrape, 1);
  Put32(&scrape, 0);
  Put32(&scrape, 0);
  Put32(&scrape, 0);
  EXPECT_FALSE(ParseUdpTrackerResponse(scrape).ok());
  scrape[3] = 77;
  EXPECT_FALSE(ParseUdpTrackerResponse(scrape).ok());
  EXPECT_FALSE(ParseUdpTrackerResponse(std::vector<uint8_t>{0, 0, 0, 3, 0, 0, 0}).ok());
  EXPECT_FALSE(ParseUdpTrackerResponse({}).ok());
}

TEST(UdpTrackerCodecTest, ParsesUrls) {
  absl::StatusOr<UdpTrackerEndpoint> ep = ParseUdpTrackerUrl("udp://tracker.example:6969/announce");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(ep->host, "tracker.example");
  EXPECT_EQ(ep->port, 6969);
  ep = ParseUdpTrackerUrl("UDP://127.0.0.1:80");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 80);
  ep = ParseUdpTrackerUrl("udp://[::1]:1337/x?y=1");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->port, 1337);
  ep = ParseUdpTrackerUrl("udp://h.example:65535?passkey=1");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->port, 65535);

  for (const char* bad :
       {"http://h.example:80/", "udp://h.example", "udp://h.example:/", "udp://:80",
        "udp://h.example:0", "udp://h.example:65536", "udp://h.example:8x", "udp://::1:80",
        "udp://[::1/", "udp://user@h.example:80", "udp://h.example:+80"}) {
    EXPECT_FALSE(ParseUdpTrackerUrl(bad).ok()) << bad;
  }
}

// --------------------------------------------------------------------------------- exchange

// The transaction id of a request packet.
uint32_t Tid(absl::Span<const uint8_t> packet) { return Get32(packet.data() + 12); }
bool IsConnect(absl::Span<const uint8_t> packet) {
  return packet.size() == kUdpConnectRequestSize && Get64(packet.data()) == kUdpTrackerProtocolId;
}
bool IsAnnounce(absl::Span<const uint8_t> packet) {
  return packet.size() == kUdpAnnounceRequestSize && Get32(packet.data() + 8) == 1;
}

TEST(UdpTrackerExchangeTest, ConnectThenAnnounce) {
  UdpTrackerExchange ex(1, 0x5eed);
  EXPECT_FALSE(ex.busy());
  EXPECT_EQ(ex.next_timeout(), UdpTrackerExchange::kNever);
  absl::Span<const uint8_t> p = ex.Start(TestParams(), At(1000));
  ASSERT_TRUE(IsConnect(p));
  const uint32_t tid = Tid(p);
  EXPECT_TRUE(ex.busy());
  EXPECT_EQ(ex.next_timeout(), At(16'000));

  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 0xabcdef), At(1100));
  ASSERT_EQ(s.kind, Kind::kSend);
  ASSERT_TRUE(IsAnnounce(s.packet));
  EXPECT_EQ(Get64(s.packet.data()), 0xabcdefu);
  EXPECT_EQ(Get32(s.packet.data() + 88), 0x5eedu);  // key
  EXPECT_EQ(Get32(s.packet.data() + 80), 2u);       // started
  const uint32_t tid2 = Tid(s.packet);
  EXPECT_NE(tid2, tid);
  EXPECT_EQ(ex.connection_id(At(1100)), 0xabcdefu);

  s = ex.HandleDatagram(AnnounceResponseBytes(tid2, 900, 5, 6, {{0x7f000001, 7000}}), At(1200));
  ASSERT_EQ(s.kind, Kind::kDone);
  ASSERT_TRUE(s.result.ok()) << s.result.status();
  EXPECT_EQ(s.result->interval, 900);
  EXPECT_EQ(s.result->incomplete, 5);
  EXPECT_EQ(s.result->complete, 6);
  EXPECT_THAT(s.result->peers, ElementsAre(PeerAddress{0x7f000001, 7000}));
  EXPECT_TRUE(s.result->failure_reason.empty());
  EXPECT_FALSE(ex.busy());
  EXPECT_EQ(ex.packets_sent(), 2);
  // Idle: datagrams and timeouts do nothing.
  EXPECT_EQ(ex.HandleDatagram(ConnectResponse(tid, 1), At(1300)).kind, Kind::kNothing);
  EXPECT_EQ(ex.HandleTimeout(At(10'000'000)).kind, Kind::kNothing);
}

TEST(UdpTrackerExchangeTest, WrongTransactionIdOrActionIsIgnored) {
  UdpTrackerExchange ex(2, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0)));
  EXPECT_EQ(ex.HandleDatagram(ConnectResponse(tid + 1, 5), At(1)).kind, Kind::kNothing);
  EXPECT_EQ(ex.HandleDatagram(ErrorResponse(tid ^ 0x8000, "nope"), At(1)).kind, Kind::kNothing);
  // Right tid, wrong action for the state: an announce answer while connecting.
  EXPECT_EQ(ex.HandleDatagram(AnnounceResponseBytes(tid, 60, 0, 0, {}), At(1)).kind,
            Kind::kNothing);
  // Garbage with somebody else's tid.
  std::vector<uint8_t> junk = ConnectResponse(tid + 7, 5);
  junk.push_back(0);
  EXPECT_EQ(ex.HandleDatagram(junk, At(1)).kind, Kind::kNothing);
  EXPECT_TRUE(ex.busy());
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 5), At(2));
  ASSERT_EQ(s.kind, Kind::kSend);
  const uint32_t tid2 = Tid(s.packet);
  // The connect answer repeated (same old tid) during the announce: ignored.
  EXPECT_EQ(ex.HandleDatagram(ConnectResponse(tid, 6), At(3)).kind, Kind::kNothing);
  EXPECT_EQ(ex.HandleDatagram(AnnounceResponseBytes(tid, 60, 0, 0, {}), At(3)).kind,
            Kind::kNothing);
  s = ex.HandleDatagram(AnnounceResponseBytes(tid2, 60, 0, 0, {}), At(4));
  EXPECT_EQ(s.kind, Kind::kDone);
  EXPECT_TRUE(s.result.ok());
}

TEST(UdpTrackerExchangeTest, MalformedAnswerToOurTransactionFails) {
  UdpTrackerExchange ex(3, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0)));
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 5), At(1));
  const uint32_t tid2 = Tid(s.packet);
  std::vector<uint8_t> bad = AnnounceResponseBytes(tid2, 60, 0, 0, {{1, 2}});
  bad.pop_back();
  s = ex.HandleDatagram(bad, At(2));
  ASSERT_EQ(s.kind, Kind::kDone);
  EXPECT_EQ(s.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ex.busy());
}

TEST(UdpTrackerExchangeTest, ErrorActionIsAFailureReason) {
  UdpTrackerExchange ex(4, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0)));
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 5), At(1));
  ASSERT_EQ(s.kind, Kind::kSend);
  s = ex.HandleDatagram(ErrorResponse(Tid(s.packet), "torrent not registered"), At(2));
  ASSERT_EQ(s.kind, Kind::kDone);
  ASSERT_TRUE(s.result.ok());
  EXPECT_EQ(s.result->failure_reason, "torrent not registered");
  // The connection id is not trusted after an error: the next announce connects again.
  EXPECT_FALSE(ex.connection_id(At(3)).has_value());
  EXPECT_TRUE(IsConnect(ex.Start(TestParams(), At(3))));
  // An error to the connect itself also ends the exchange.
  s = ex.HandleDatagram(ErrorResponse(Tid(ex.Start(TestParams(), At(4))), ""), At(5));
  ASSERT_EQ(s.kind, Kind::kDone);
  ASSERT_TRUE(s.result.ok());
  EXPECT_FALSE(s.result->failure_reason.empty());
}

TEST(UdpTrackerExchangeTest, RetransmitsAfter15TimesTwoToTheNSeconds) {
  UdpTrackerExchange ex(5, 0);
  absl::Span<const uint8_t> first = ex.Start(TestParams(), At(0));
  const std::vector<uint8_t> connect(first.begin(), first.end());
  int64_t now = 0;
  std::vector<int64_t> gaps;
  for (int n = 0; n <= 8; ++n) {
    const int64_t due = ex.next_timeout().ms;
    gaps.push_back((due - now) / 1000);
    EXPECT_EQ(ex.HandleTimeout(At(due - 1)).kind, Kind::kNothing);
    now = due;
    UdpTrackerExchange::Step s = ex.HandleTimeout(At(now));
    if (n < 8) {
      ASSERT_EQ(s.kind, Kind::kSend) << n;
      // The same packet, same transaction id.
      EXPECT_EQ(std::vector<uint8_t>(s.packet.begin(), s.packet.end()), connect);
    } else {
      ASSERT_EQ(s.kind, Kind::kDone);
      EXPECT_EQ(s.result.status().code(), absl::StatusCode::kDeadlineExceeded);
    }
  }
  EXPECT_THAT(gaps, ElementsAre(15, 30, 60, 120, 240, 480, 960, 1920, 3840));
  EXPECT_EQ(ex.packets_sent(), 9);
  EXPECT_FALSE(ex.busy());
}

TEST(UdpTrackerExchangeTest, FewerRetransmitsWhenAsked) {
  UdpTrackerExchange ex(6, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0), /*max_retransmits=*/1));
  ASSERT_EQ(ex.HandleTimeout(At(15'000)).kind, Kind::kSend);
  EXPECT_EQ(ex.next_timeout(), At(45'000));
  // A late answer to the first copy still counts (same tid), and n keeps counting: the announce
  // gets the 30 s timeout and no retransmission.
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 9), At(20'000));
  ASSERT_EQ(s.kind, Kind::kSend);
  EXPECT_EQ(ex.next_timeout(), At(50'000));
  s = ex.HandleTimeout(At(50'000));
  ASSERT_EQ(s.kind, Kind::kDone);
  EXPECT_EQ(s.result.status().code(), absl::StatusCode::kDeadlineExceeded);

  UdpTrackerExchange none(7, 0);
  none.Start(TestParams(), At(0), 0);
  EXPECT_EQ(none.HandleTimeout(At(15'000)).kind, Kind::kDone);
}

TEST(UdpTrackerExchangeTest, ConnectionIdIsReusedForOneMinute) {
  UdpTrackerExchange ex(8, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0)));
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 0x77), At(1000));
  ASSERT_EQ(ex.HandleDatagram(AnnounceResponseBytes(Tid(s.packet), 60, 0, 0, {}), At(1100)).kind,
            Kind::kDone);

  // 59.999 s after the connect answer: straight to announce with the cached id.
  absl::Span<const uint8_t> p = ex.Start(TestParams(), At(60'999));
  ASSERT_TRUE(IsAnnounce(p));
  EXPECT_EQ(Get64(p.data()), 0x77u);
  s = ex.HandleDatagram(AnnounceResponseBytes(Tid(p), 60, 0, 0, {}), At(61'000));
  ASSERT_EQ(s.kind, Kind::kDone);

  // 60 s after: expired, connect again.
  EXPECT_FALSE(ex.connection_id(At(61'000)).has_value());
  EXPECT_TRUE(IsConnect(ex.Start(TestParams(), At(61'000))));
}

TEST(UdpTrackerExchangeTest, ConnectionIdExpiringDuringRetransmitsReconnects) {
  UdpTrackerExchange ex(9, 0);
  const uint32_t tid = Tid(ex.Start(TestParams(), At(0)));
  UdpTrackerExchange::Step s = ex.HandleDatagram(ConnectResponse(tid, 0x42), At(0));
  ASSERT_TRUE(IsAnnounce(s.packet));
  // Announce unanswered at 15 s: retransmitted with the still-valid id.
  s = ex.HandleTimeout(At(15'000));
  ASSERT_EQ(s.kind, Kind::kSend);
  EXPECT_TRUE(IsAnnounce(s.packet));
  // At 45 s the id is still valid; at 105 s it is not: connect again.
  s = ex.HandleTimeout(At(45'000));
  ASSERT_TRUE(IsAnnounce(s.packet));
  s = ex.HandleTimeout(At(105'000));
  ASSERT_EQ(s.kind, Kind::kSend);
  ASSERT_TRUE(IsConnect(s.packet));
  s = ex.HandleDatagram(ConnectResponse(Tid(s.packet), 0x43), At(106'000));
  ASSERT_TRUE(IsAnnounce(s.packet));
  EXPECT_EQ(Get64(s.packet.data()), 0x43u);
}

TEST(UdpTrackerExchangeTest, StartAbandonsThePreviousExchange) {
  UdpTrackerExchange ex(10, 0);
  const uint32_t old_tid = Tid(ex.Start(TestParams(), At(0)));
  const uint32_t new_tid = Tid(ex.Start(TestParams(), At(1)));
  EXPECT_NE(old_tid, new_tid);
  EXPECT_EQ(ex.HandleDatagram(ConnectResponse(old_tid, 1), At(2)).kind, Kind::kNothing);
  EXPECT_EQ(ex.HandleDatagram(ConnectResponse(new_tid, 1), At(2)).kind, Kind::kSend);
  ex.Abandon();
  EXPECT_FALSE(ex.busy());
  EXPECT_TRUE(ex.connection_id(At(3)).has_value());
}

TEST(UdpTrackerExchangeTest, TransactionIdsDependOnSeed) {
  UdpTrackerExchange a(11, 0), b(11, 0), c(12, 0);
  const uint32_t ta = Tid(a.Start(TestParams(), At(0)));
  EXPECT_EQ(ta, Tid(b.Start(TestParams(), At(0))));
  EXPECT_NE(ta, Tid(c.Start(TestParams(), At(0))));
}

}  // namespace
}  // namespace torrenty::engine

// ------------------------------------------------------------------------------------ transport

namespace torrenty::io {
namespace {

using engine::AnnounceResponse;
using engine::PeerAddress;

// A fake BEP 15 tracker: a non-blocking UDP socket on 127.0.0.1 answered from the test thread.
class FakeTracker {
 public:
  FakeTracker() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~FakeTracker() { close(fd_); }
  uint16_t port() const { return port_; }

  // Answers every pending request; returns how many it saw.
  int Serve() {
    int n = 0;
    for (;;) {
      uint8_t buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      const ssize_t got =
          recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (got < 0) return n;
      ++n;
      std::vector<uint8_t> out;
      const uint32_t tid = Get32(buf + 12);
      if (got == 16 && Get64(buf) == engine::kUdpTrackerProtocolId) {
        ++connects;
        if (silent) continue;
        out = engine::ConnectResponse(tid, kConnId);
      } else if (got == 98 && Get64(buf) == kConnId && Get32(buf + 8) == 1) {
        ++announces;
        last_event = Get32(buf + 80);
        last_port = static_cast<uint16_t>((buf[96] << 8) | buf[97]);
        if (silent) continue;
        // First a stray answer with a wrong transaction id, then the real one.
        std::vector<uint8_t> stray = engine::AnnounceResponseBytes(tid + 1, 1, 0, 0, {});
        sendto(fd_, stray.data(), stray.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        out = error.empty() ? engine::AnnounceResponseBytes(tid, 1200, 2, 3, peers)
                            : engine::ErrorResponse(tid, error);
      } else {
        continue;
      }
      sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  static uint32_t Get32(const uint8_t* p) { return engine::Get32(p); }
  static uint64_t Get64(const uint8_t* p) { return engine::Get64(p); }
  static constexpr uint64_t kConnId = 0x1234567890abcdef;

  int connects = 0;
  int announces = 0;
  uint32_t last_event = 99;
  uint16_t last_port = 0;
  bool silent = false;
  std::string error;
  std::vector<PeerAddress> peers = {{0x7f000001, 5555}, {0x7f000002, 6666}};

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

engine::Instant Now() {
  return engine::Instant{std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count()};
}

class UdpTrackerTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { Build({}); }
  void TearDown() override {
    ring_.reset();  // First: its operations point into the transport.
    transport_.reset();
  }
  // A new ring and transport (the old ones go first, ring before transport).
  void Build(UdpTrackerTransport::Options options) {
    TearDown();
    absl::StatusOr<std::unique_ptr<Ring>> r = Ring::Create(64);
    ASSERT_TRUE(r.ok()) << r.status();
    ring_ = std::move(*r);
    absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> t = UdpTrackerTransport::Create(
        ring_.get(),
        [this](uint64_t id, absl::StatusOr<AnnounceResponse> res) {
          results_.emplace_back(id, std::move(res));
        },
        99, std::move(options));
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = std::move(*t);
  }
  // A transport whose host names resolve through a counting table: "*.test" names map to
  // 127.0.0.1 except "bad.test", which fails.
  void BuildWithCountingResolver(int64_t ttl_ms, int64_t negative_ttl_ms) {
    UdpTrackerTransport::Options options;
    options.dns.ttl_ms = ttl_ms;
    options.dns.negative_ttl_ms = negative_ttl_ms;
    options.resolve = [lookups = lookups_](const std::string& host) -> absl::StatusOr<uint32_t> {
      lookups->fetch_add(1);
      if (host == "bad.test") return absl::UnavailableError("cannot resolve bad.test: no");
      return 0x7f000001u;
    };
    Build(std::move(options));
  }

  // Runs the ring and the fake tracker until a result arrives (or 5 s pass).
  bool RunUntilResult(size_t count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (results_.size() < count && std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE(ring_->RunOnce(5).ok());
      tracker_.Serve();
      transport_->Tick(Now());
    }
    return results_.size() >= count;
  }

  engine::AnnounceParams Params(engine::AnnounceEvent event) {
    engine::AnnounceParams p;
    p.info_hash.fill(1);
    p.peer_id.fill(2);
    p.port = 4321;
    p.event = event;
    return p;
  }

  FakeTracker tracker_;
  // Shared with the resolver thread, which may outlive the transport for a moment.
  std::shared_ptr<std::atomic<int>> lookups_ = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<UdpTrackerTransport> transport_;
  std::vector<std::pair<uint64_t, absl::StatusOr<AnnounceResponse>>> results_;
};

TEST_F(UdpTrackerTransportTest, AnnouncesAndReusesConnectionId) {
  EXPECT_NE(transport_->local_port(), 0);
  transport_->Announce(7, "127.0.0.1", tracker_.port(), Params(engine::AnnounceEvent::kStarted), 8,
                       Now());
  ASSERT_TRUE(RunUntilResult());
  EXPECT_EQ(results_[0].first, 7u);
  ASSERT_TRUE(results_[0].second.ok()) << results_[0].second.status();
  EXPECT_EQ(results_[0].second->interval, 1200);
  EXPECT_EQ(results_[0].second->complete, 3);
  EXPECT_EQ(results_[0].second->incomplete, 2);
  EXPECT_THAT(results_[0].second->peers,
              ::testing::ElementsAre(PeerAddress{0x7f000001, 5555}, PeerAddress{0x7f000002, 6666}));
  EXPECT_EQ(tracker_.connects, 1);
  EXPECT_EQ(tracker_.announces, 1);
  EXPECT_EQ(tracker_.last_event, 2u);
  EXPECT_EQ(tracker_.last_port, 4321);

  // Within the minute: no second connect. "localhost" is the same tracker by another name, so it
  // connects once more.
  transport_->Announce(8, "127.0.0.1", tracker_.port(), Params(engine::AnnounceEvent::kStopped), 0,
                       Now());
  ASSERT_TRUE(RunUntilResult(2));
  EXPECT_EQ(results_[1].first, 8u);
  EXPECT_TRUE(results_[1].second.ok());
  EXPECT_EQ(tracker_.connects, 1);
  EXPECT_EQ(tracker_.announces, 2);
  EXPECT_EQ(tracker_.last_event, 3u);

  transport_->Announce(9, "localhost", tracker_.port(), Params(engine::AnnounceEvent::kNone), 8,
                       Now());
  ASSERT_TRUE(RunUntilResult(3));
  EXPECT_TRUE(results_[2].second.ok());
  EXPECT_EQ(tracker_.connects, 2);
}

TEST_F(UdpTrackerTransportTest, TrackerErrorBecomesFailureReason) {
  tracker_.error = "not authorized";
  transport_->Announce(1, "127.0.0.1", tracker_.port(), Params(engine::AnnounceEvent::kStarted), 8,
                       Now());
  ASSERT_TRUE(RunUntilResult());
  ASSERT_TRUE(results_[0].second.ok());
  EXPECT_EQ(results_[0].second->failure_reason, "not authorized");
}

TEST_F(UdpTrackerTransportTest, SilentTrackerTimesOut) {
  tracker_.silent = true;
  const engine::Instant start = Now();
  transport_->Announce(1, "127.0.0.1", tracker_.port(), Params(engine::AnnounceEvent::kStarted), 1,
                       start);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(ring_->RunOnce(1).ok());
    tracker_.Serve();
  }
  EXPECT_EQ(tracker_.connects, 1);
  // Drive the clock by hand: retransmit at 15 s, give up at 45 s.
  transport_->Tick(engine::Instant{start.ms + 15'000});
  for (int i = 0; i < 20 && tracker_.connects < 2; ++i) {
    ASSERT_TRUE(ring_->RunOnce(1).ok());
    tracker_.Serve();
  }
  EXPECT_EQ(tracker_.connects, 2);
  EXPECT_TRUE(results_.empty());
  transport_->Tick(engine::Instant{start.ms + 45'000});
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].second.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(UdpTrackerTransportTest, ResolvesHostNamesOffThread) {
  char name[256] = {};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (getaddrinfo(name, nullptr, &hints, &res) != 0) GTEST_SKIP() << "hostname not resolvable";
  const bool loopback =
      ntohl(reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr.s_addr) >> 24 == 127;
  freeaddrinfo(res);
  if (!loopback) GTEST_SKIP() << "hostname does not resolve to loopback";
  transport_->Announce(3, name, tracker_.port(), Params(engine::AnnounceEvent::kStarted), 8, Now());
  EXPECT_TRUE(results_.empty());  // Not resolved inline.
  ASSERT_TRUE(RunUntilResult());
  EXPECT_TRUE(results_[0].second.ok()) << results_[0].second.status();
}

TEST_F(UdpTrackerTransportTest, OneLookupPerHostPerTtl) {
  BuildWithCountingResolver(/*ttl_ms=*/60'000, /*negative_ttl_ms=*/30'000);
  const engine::Instant start = Now();
  // Two trackers on one host (another port, differently cased), asked for before any answer:
  // one lookup.
  transport_->Announce(1, "tracker.test", tracker_.port(), Params(engine::AnnounceEvent::kStarted),
                       8, start);
  transport_->Announce(2, "TRACKER.test", 1, Params(engine::AnnounceEvent::kStarted), 0, start);
  ASSERT_TRUE(RunUntilResult());
  EXPECT_EQ(results_[0].first, 1u);
  ASSERT_TRUE(results_[0].second.ok()) << results_[0].second.status();
  // Many announces within the TTL: no more lookups.
  for (uint64_t id = 10; id < 30; ++id) {
    transport_->Announce(id, "tracker.test", tracker_.port(), Params(engine::AnnounceEvent::kNone),
                         8, Now());
    ASSERT_TRUE(RunUntilResult(results_.size() + 1));
    ASSERT_TRUE(results_.back().second.ok()) << results_.back().second.status();
  }
  EXPECT_EQ(lookups_->load(), 1);
  // Past the TTL the name is looked up again.
  transport_->Announce(40, "tracker.test", tracker_.port(), Params(engine::AnnounceEvent::kNone), 8,
                       engine::Instant{Now().ms + 61'000});
  ASSERT_TRUE(RunUntilResult(results_.size() + 1));
  EXPECT_TRUE(results_.back().second.ok()) << results_.back().second.status();
  EXPECT_EQ(lookups_->load(), 2);
}

TEST_F(UdpTrackerTransportTest, FailedLookupIsRememberedBriefly) {
  BuildWithCountingResolver(/*ttl_ms=*/60'000, /*negative_ttl_ms=*/30'000);
  transport_->Announce(1, "bad.test", 6969, Params(engine::AnnounceEvent::kStarted), 8, Now());
  ASSERT_TRUE(RunUntilResult());
  EXPECT_EQ(results_[0].second.status().code(), absl::StatusCode::kUnavailable);
  // Within the negative TTL the error comes back at once, without a lookup.
  for (uint64_t id = 2; id < 12; ++id) {
    transport_->Announce(id, "bad.test", 6969, Params(engine::AnnounceEvent::kStarted), 8, Now());
    ASSERT_EQ(results_.size(), id);
    EXPECT_EQ(results_.back().second.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(results_.back().second.status().message()),
                ::testing::HasSubstr("bad.test"));
  }
  EXPECT_EQ(lookups_->load(), 1);
  transport_->Announce(20, "bad.test", 6969, Params(engine::AnnounceEvent::kStarted), 8,
                       engine::Instant{Now().ms + 31'000});
  ASSERT_TRUE(RunUntilResult(results_.size() + 1));
  EXPECT_EQ(lookups_->load(), 2);
}

TEST_F(UdpTrackerTransportTest, Ipv6IsNotSupported) {
  transport_->Announce(4, "::1", 80, Params(engine::AnnounceEvent::kStarted), 8, Now());
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].second.status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace torrenty::io
