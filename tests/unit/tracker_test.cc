// Tests for HTTP tracker URL building and response parsing (engine/tracker/http_announce.h).
#include "engine/tracker/http_announce.h"

#include <string>

#include "engine/codec/bencode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

AnnounceParams SampleParams() {
  AnnounceParams p;
  // Bytes that must be escaped (0x00, ' ', '&', '%', 0xff) next to ones that must not.
  const uint8_t hash[20] = {0x00, 0x20, 0x26, 0x25, 0xff, 'a', 'Z', '9', '-', '.',
                            '_',  '~',  0x3d, 0x3f, 0x2b, 1,   2,   3,   4,   0x7f};
  std::copy(std::begin(hash), std::end(hash), p.info_hash.begin());
  const std::string peer_id = "-TY0001-abcdefghijkl";
  std::copy(peer_id.begin(), peer_id.end(), p.peer_id.begin());
  p.port = 6881;
  p.uploaded = 10;
  p.downloaded = 20;
  p.left = 30;
  p.numwant = 50;
  return p;
}

TEST(BuildAnnounceUrlTest, EncodesBinaryBytes) {
  absl::StatusOr<std::string> url = BuildAnnounceUrl("http://t.example/announce", SampleParams());
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url,
            "http://t.example/announce?info_hash=%00%20%26%25%FFaZ9-._~%3D%3F%2B%01%02%03%04%7F"
            "&peer_id=-TY0001-abcdefghijkl&port=6881&uploaded=10&downloaded=20&left=30"
            "&compact=1&numwant=50");
}

TEST(BuildAnnounceUrlTest, AppendsToExistingQuery) {
  AnnounceParams p = SampleParams();
  absl::StatusOr<std::string> url = BuildAnnounceUrl("https://t.example/a.php?passkey=xyz", p);
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->starts_with("https://t.example/a.php?passkey=xyz&info_hash=%00")) << *url;
  EXPECT_EQ(url->find('?'), url->rfind('?'));

  url = BuildAnnounceUrl("http://t.example/a?", p);
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->starts_with("http://t.example/a?info_hash=")) << *url;
}

TEST(BuildAnnounceUrlTest, EventAndTrackerId) {
  AnnounceParams p = SampleParams();
  p.event = AnnounceEvent::kStarted;
  p.tracker_id = "id 1&x";
  absl::StatusOr<std::string> url = BuildAnnounceUrl("HTTP://t.example:8080/announce#frag", p);
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->ends_with("&numwant=50&event=started&trackerid=id%201%26x")) << *url;
  EXPECT_EQ(url->find('#'), std::string::npos);

  p.event = AnnounceEvent::kCompleted;
  p.tracker_id.clear();
  url = BuildAnnounceUrl("http://t.example/announce", p);
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->ends_with("&event=completed")) << *url;
  p.event = AnnounceEvent::kStopped;
  url = BuildAnnounceUrl("http://t.example/announce", p);
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->ends_with("&event=stopped")) << *url;
}

TEST(BuildAnnounceUrlTest, RejectsNonHttp) {
  EXPECT_FALSE(BuildAnnounceUrl("udp://t.example:80/announce", SampleParams()).ok());
  EXPECT_FALSE(BuildAnnounceUrl("ftp://t.example/", SampleParams()).ok());
  EXPECT_FALSE(BuildAnnounceUrl("t.example/announce", SampleParams()).ok());
  EXPECT_FALSE(BuildAnnounceUrl("http:///announce", SampleParams()).ok());
  EXPECT_FALSE(BuildAnnounceUrl("http://a b/announce", SampleParams()).ok());
  EXPECT_FALSE(BuildAnnounceUrl("", SampleParams()).ok());
}

std::string Compact(std::initializer_list<std::array<uint8_t, 6>> peers) {
  std::string out;
  for (const auto& p : peers) out.append(reinterpret_cast<const char*>(p.data()), 6);
  return out;
}

TEST(ParseAnnounceResponseTest, CompactPeers) {
  bencode::Encoder e;
  e.BeginDict();
  e.String("complete");
  e.Int(5);
  e.String("incomplete");
  e.Int(7);
  e.String("interval");
  e.Int(1800);
  e.String("min interval");
  e.Int(60);
  e.String("peers");
  e.String(Compact({{10, 0, 0, 1, 0x1a, 0xe1}, {192, 168, 1, 2, 0, 80}, {1, 2, 3, 4, 0, 0}}));
  e.String("tracker id");
  e.String("abc");
  e.String("warning message");
  e.String("careful");
  e.End();
  absl::StatusOr<AnnounceResponse> r = ParseAnnounceResponse(e.Take());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->failure_reason, "");
  EXPECT_EQ(r->warning_message, "careful");
  EXPECT_EQ(r->interval, 1800);
  EXPECT_EQ(r->min_interval, 60);
  EXPECT_EQ(r->complete, 5);
  EXPECT_EQ(r->incomplete, 7);
  EXPECT_EQ(r->tracker_id, "abc");
  // The port-0 entry is dropped.
  EXPECT_THAT(r->peers, ElementsAre(PeerAddress{0x0a000001, 6881}, PeerAddress{0xc0a80102, 80}));
}

TEST(ParseAnnounceResponseTest, DictPeers) {
  const std::string body =
      "d8:intervali900e5:peersl"
      "d2:ip8:10.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee"
      "d2:ip3:::14:porti1ee"           // IPv6: skipped
      "d2:ip11:example.com4:porti1ee"  // hostname: skipped
      "d2:ip7:1.2.3.44:porti0ee"       // port 0: skipped
      "d2:ip7:1.2.3.44:porti70000ee"   // port out of range: skipped
      "d2:ip8:01.2.3.44:porti1ee"      // leading zero: skipped
      "d2:ip9:256.1.1.14:porti1ee"     // octet out of range: skipped
      "d2:ip7:1.2.3.4e"                // no port: skipped
      "i5e"                            // not a dict: skipped
      "d2:ip15:255.255.255.2554:porti65535ee"
      "ee";
  absl::StatusOr<AnnounceResponse> r = ParseAnnounceResponse(body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, 900);
  EXPECT_EQ(r->complete, -1);
  EXPECT_THAT(r->peers, ElementsAre(PeerAddress{0x0a000001, 6881}, PeerAddress{0xffffffff, 65535}));
}

TEST(ParseAnnounceResponseTest, FailureReasonIsAResponse) {
  absl::StatusOr<AnnounceResponse> r =
      ParseAnnounceResponse("d14:failure reason21:info hash not allowede");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->failure_reason, "info hash not allowed");
  EXPECT_TRUE(r->peers.empty());

  r = ParseAnnounceResponse("d14:failure reason0:e");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->failure_reason.empty());

  r = ParseAnnounceResponse("d14:failure reason" + std::to_string(5000) + ":" +
                            std::string(5000, 'x') + "e");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->failure_reason.size(), kMaxTrackerMessageBytes);
}

TEST(ParseAnnounceResponseTest, GarbageIsAnError) {
  for (const std::string& body :
       {std::string(""), std::string("<html>502 Bad Gateway</html>"), std::string("i42e"),
        std::string("le"), std::string("d8:intervali1800e"), std::string("d5:peersi3ee"),
        std::string("d8:interval3:abce"), std::string("d14:failure reasoni1ee"),
        std::string("d8:intervali1800e5:peers6:abcdefextra")}) {
    EXPECT_FALSE(ParseAnnounceResponse(body).ok()) << body;
  }
}

TEST(ParseAnnounceResponseTest, TruncatedCompactListIsAnError) {
  absl::StatusOr<AnnounceResponse> r = ParseAnnounceResponse("d8:intervali1800e5:peers8:abcdefghe");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("multiple of 6"));
}

TEST(ParseAnnounceResponseTest, NoPeersAndNegativeValues) {
  absl::StatusOr<AnnounceResponse> r =
      ParseAnnounceResponse("d8:completei-5e8:intervali-1e5:peers0:e");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, 0);
  EXPECT_EQ(r->complete, -1);
  EXPECT_TRUE(r->peers.empty());
}

TEST(ParseAnnounceResponseTest, PeerCountIsCapped) {
  std::string peers;
  for (size_t i = 0; i < kMaxPeersPerAnnounce + 5; ++i) {
    const uint32_t ip = 0x0a000000 + static_cast<uint32_t>(i);
    peers += {static_cast<char>(ip >> 24),
              static_cast<char>(ip >> 16),
              static_cast<char>(ip >> 8),
              static_cast<char>(ip),
              0x1a,
              static_cast<char>(0xe1)};
  }
  bencode::Encoder e;
  e.BeginDict();
  e.String("peers");
  e.String(peers);
  e.End();
  absl::StatusOr<AnnounceResponse> r = ParseAnnounceResponse(e.Take());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peers.size(), kMaxPeersPerAnnounce);
}

}  // namespace
}  // namespace torrenty::engine
