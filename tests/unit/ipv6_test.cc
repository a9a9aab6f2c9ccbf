// BEP 7 IPv6: PeerAddress formatting, --peer/--bind parsing and a tracker's compact `peers6`.
#include <array>
#include <string>

#include "engine/base/types.h"
#include "engine/tracker/http_announce.h"
#include "gtest/gtest.h"
#include "tools/torrenty/cli_util.h"

namespace torrenty {
namespace {

using engine::PeerAddress;

std::array<uint8_t, 16> V6Bytes(std::initializer_list<int> groups) {
  std::array<uint8_t, 16> b{};
  int i = 0;
  for (int g : groups) {
    b[2 * i] = static_cast<uint8_t>(g >> 8);
    b[2 * i + 1] = static_cast<uint8_t>(g);
    ++i;
  }
  return b;
}

TEST(PeerAddressTest, FormatsIpv4AndIpv6) {
  EXPECT_EQ((PeerAddress{0x7F000001, 6881}).ToString(), "127.0.0.1:6881");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({0, 0, 0, 0, 0, 0, 0, 1}), 6881).ToString(), "[::1]:6881");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}), 80).ToString(),
            "[2001:db8::1]:80");
  // RFC 5952: the longest zero run is compressed, a lone zero group is not, leading zeros go.
  EXPECT_EQ(PeerAddress::V6(V6Bytes({0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x0abc}), 1).IpString(),
            "2001:db8:0:1::abc");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({0x2001, 0, 0, 1, 0, 0, 1, 1}), 1).IpString(),
            "2001::1:0:0:1:1");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({0xfe80, 0, 0, 0, 1, 2, 3, 0}), 1).IpString(), "fe80::1:2:3:0");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({}), 1).IpString(), "::");
  EXPECT_EQ(PeerAddress::V6(V6Bytes({1, 2, 3, 4, 5, 6, 7, 8}), 1).IpString(), "1:2:3:4:5:6:7:8");
}

TEST(PeerAddressTest, MappedIpv4IsIpv4AndLoopbackIsKnown) {
  std::array<uint8_t, 16> mapped{};
  mapped[10] = mapped[11] = 0xFF;
  mapped[12] = 127;
  mapped[15] = 1;
  const PeerAddress a = PeerAddress::V6(mapped, 7);
  EXPECT_FALSE(a.v6);
  EXPECT_EQ(a, (PeerAddress{0x7F000001, 7}));
  EXPECT_TRUE(a.IsLoopback());
  EXPECT_TRUE(PeerAddress::V6(V6Bytes({0, 0, 0, 0, 0, 0, 0, 1}), 7).IsLoopback());
  EXPECT_FALSE(PeerAddress::V6(V6Bytes({0, 0, 0, 0, 0, 0, 0, 2}), 7).IsLoopback());
  // The same port and the same low bits, but another family: different peers.
  EXPECT_NE(PeerAddress::V6(V6Bytes({0, 0, 0, 0, 0, 0, 0, 1}), 7), (PeerAddress{0, 7}));
}

TEST(PeerAddressParseTest, PeerFlag) {
  absl::StatusOr<PeerAddress> a = tools::ParsePeerAddress("[::1]:6881");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->v6);
  EXPECT_EQ(a->ToString(), "[::1]:6881");
  a = tools::ParsePeerAddress("[2001:db8::7]:1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ToString(), "[2001:db8::7]:1");
  a = tools::ParsePeerAddress("127.0.0.1:80");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->v6);
  EXPECT_EQ(a->ToString(), "127.0.0.1:80");
  for (const char* bad : {"::1:6881", "[::1]", "[::1]6881", "[::1]:0", "[::1]:70000", "[::g]:1",
                          "[127.0.0.1]:1", "[::1:1", "::1]:1", "1.2.3:4", ":1", "[]:1"}) {
    EXPECT_FALSE(tools::ParsePeerAddress(bad).ok()) << bad;
  }
}

TEST(PeerAddressParseTest, BindFlag) {
  absl::StatusOr<PeerAddress> a = tools::ParseIpAddress("::1");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->v6);
  a = tools::ParseIpAddress("[::1]");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->v6);
  a = tools::ParseIpAddress("127.0.0.1");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ip, 0x7F000001u);
  EXPECT_FALSE(tools::ParseIpAddress("example.org").ok());
  EXPECT_FALSE(tools::ParseIpAddress("").ok());
}

TEST(Peers6Test, CompactIpv6PeersAreAddedToPeers) {
  std::string peers6;
  const std::array<uint8_t, 16> one = V6Bytes({0, 0, 0, 0, 0, 0, 0, 1});
  peers6.append(reinterpret_cast<const char*>(one.data()), 16);
  peers6 += "\x1a\xe1";  // 6881
  const std::array<uint8_t, 16> two = V6Bytes({0x2001, 0xdb8, 0, 0, 0, 0, 0, 2});
  peers6.append(reinterpret_cast<const char*>(two.data()), 16);
  peers6 += std::string("\x00\x00", 2);                 // port 0: skipped
  const std::string v4("\x7f\x00\x00\x01\x1a\xe2", 6);  // 127.0.0.1:6882
  const std::string body = "d8:intervali60e5:peers6:" + v4 + "6:peers6" +
                           std::to_string(peers6.size()) + ":" + peers6 + "e";
  absl::StatusOr<engine::AnnounceResponse> r = engine::ParseAnnounceResponse(body);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->peers.size(), 2u);
  EXPECT_EQ(r->peers[0].ToString(), "127.0.0.1:6882");
  EXPECT_EQ(r->peers[1].ToString(), "[::1]:6881");

  // A length that is not a multiple of 18 is an error, as for `peers`.
  const std::string bad = "d8:intervali60e6:peers617:" + std::string(17, 'x') + "e";
  EXPECT_FALSE(engine::ParseAnnounceResponse(bad).ok());
}

}  // namespace
}  // namespace torrenty
