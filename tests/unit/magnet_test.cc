// Tests for magnet links: parsing (hex and base32 hashes, dn, tr, x.pe with IPv6), the errors for
// bad links, and the link `info` and `create` print.
#include "engine/metainfo/magnet.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

constexpr char kHex[] = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

TEST(MagnetTest, ParsesHexHashNameTrackersAndPeers) {
  absl::StatusOr<MagnetLink> m = ParseMagnet(
      "magnet:?xt=urn:btih:C12FE1C06BBA254A9DC9F519B335AA7C1367A88A&dn=My+File%20v2"
      "&tr=http%3A%2F%2Ft.example%3A80%2Fannounce&tr=udp://u.example:6969"
      "&tr=http%3A%2F%2Ft.example%3A80%2Fannounce&x.pe=127.0.0.1:6881&x.pe=[::1]:51413"
      "&x.pe=host.example:7000&xl=123");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(ToHex(m->info_hash), kHex);
  EXPECT_EQ(m->name, "My File v2");
  EXPECT_THAT(m->trackers,
              ::testing::ElementsAre("http://t.example:80/announce", "udp://u.example:6969"));
  ASSERT_EQ(m->peers.size(), 3u);
  EXPECT_EQ(m->peers[0], (MagnetPeer{"127.0.0.1", 6881}));
  EXPECT_EQ(m->peers[1], (MagnetPeer{"::1", 51413}));
  EXPECT_EQ(m->peers[2], (MagnetPeer{"host.example", 7000}));
}

TEST(MagnetTest, ParsesBase32Hash) {
  // base32 of the same 20 bytes as kHex.
  absl::StatusOr<MagnetLink> m =
      ParseMagnet("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(ToHex(m->info_hash), kHex);
  EXPECT_TRUE(m->name.empty());
}

TEST(MagnetTest, RejectsBadLinksWithClearErrors) {
  auto error = [](absl::string_view uri) {
    absl::StatusOr<MagnetLink> m = ParseMagnet(uri);
    EXPECT_FALSE(m.ok()) << uri;
    return std::string(m.status().message());
  };
  EXPECT_THAT(error("http://x"), ::testing::HasSubstr("not a magnet link"));
  EXPECT_THAT(error("magnet:?dn=x"), ::testing::HasSubstr("no xt=urn:btih"));
  EXPECT_THAT(error("magnet:?xt=urn:btih:1234"), ::testing::HasSubstr("neither 40 hex"));
  EXPECT_THAT(error("magnet:?xt=urn:btih:zz2fe1c06bba254a9dc9f519b335aa7c1367a88a"),
              ::testing::HasSubstr("neither 40 hex"));
  EXPECT_THAT(error("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1"),
              ::testing::HasSubstr("base32"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex,
                                 "&xt=urn:btih:0000000000000000000000000000000000000000")),
              ::testing::HasSubstr("two different"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&dn=%4")),
              ::testing::HasSubstr("%-escape"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&x.pe=1.2.3.4")),
              ::testing::HasSubstr("not HOST:PORT"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&x.pe=1.2.3.4:0")),
              ::testing::HasSubstr("bad port"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&x.pe=1.2.3.4:70000")),
              ::testing::HasSubstr("bad port"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&x.pe=::1:80")),
              ::testing::HasSubstr("brackets"));
  EXPECT_THAT(error(absl::StrCat("magnet:?xt=urn:btih:", kHex, "&x.pe=[::1]80")),
              ::testing::HasSubstr("[IPV6]:PORT"));
  EXPECT_THAT(error(std::string(kMaxMagnetLength + 1, 'a')), ::testing::HasSubstr("64 KiB"));
}

TEST(MagnetTest, BoundsPeersAndTrackers) {
  std::string uri = absl::StrCat("magnet:?xt=urn:btih:", kHex);
  for (int i = 1; i <= 300; ++i) absl::StrAppend(&uri, "&x.pe=10.0.0.1:", i);
  EXPECT_FALSE(ParseMagnet(uri).ok());
}

TEST(MagnetTest, IgnoresOtherHashKinds) {
  absl::StatusOr<MagnetLink> m =
      ParseMagnet(absl::StrCat("magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:", kHex));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(ToHex(m->info_hash), kHex);
}

TEST(MagnetTest, WriterRoundTrips) {
  Metainfo meta;
  meta.name = "a b&c/ü";
  meta.info_hash[0] = 0xab;
  meta.trackers = {{"http://t1/announce?x=1&y=2"}, {"udp://t2:1", "http://t3/a"}};
  const std::string link = MakeMagnet(meta);
  EXPECT_EQ(link.rfind("magnet:?xt=urn:btih:ab000000", 0), 0u) << link;
  absl::StatusOr<MagnetLink> m = ParseMagnet(link);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hash, meta.info_hash);
  EXPECT_EQ(m->name, meta.name);
  EXPECT_THAT(m->trackers,
              ::testing::ElementsAre("http://t1/announce?x=1&y=2", "udp://t2:1", "http://t3/a"));
}

}  // namespace
}  // namespace torrenty::engine
