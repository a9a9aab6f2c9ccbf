// Tests for the BEP 14 codec (engine/lsd/lsd_message.h) and the session's local discovery
// scheduler (engine/lsd/lsd_scheduler.h).
#include <string>
#include <vector>

#include "engine/lsd/lsd_message.h"
#include "engine/lsd/lsd_scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine::lsd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

InfoHash Hash(uint8_t b) {
  InfoHash h;
  h.fill(b);
  return h;
}

std::string Hex(uint8_t b) { return ToHex(Hash(b)); }

// libtorrent 2.0's announce, byte for byte as its lsd.cpp writes it.
std::string LibtorrentAnnounce(uint16_t port, uint8_t hash, const std::string& cookie) {
  return "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: " + std::to_string(port) +
         "\r\nInfohash: " + Hex(hash) + "\r\ncookie: " + cookie + "\r\n\r\n\r\n";
}

TEST(LsdMessage, ParsesLibtorrentAnnounce) {
  absl::StatusOr<LsdAnnounce> a = ParseLsdAnnounce(Bytes(LibtorrentAnnounce(6881, 0xab, "1f2e")));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "239.192.152.143:6771");
  EXPECT_EQ(a->port, 6881);
  EXPECT_THAT(a->info_hashes, ElementsAre(Hash(0xab)));
  EXPECT_EQ(a->cookie, "1f2e");
}

TEST(LsdMessage, RoundTripsSeveralInfoHashes) {
  LsdAnnounce a;
  a.host = kLsdHostV4;
  a.port = 51413;
  a.info_hashes = {Hash(1), Hash(2), Hash(3)};
  a.cookie = "c00k1e";
  absl::StatusOr<std::string> wire = EncodeLsdAnnounce(a);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_THAT(*wire, HasSubstr("\r\nInfohash: " + Hex(2) + "\r\n"));
  absl::StatusOr<LsdAnnounce> b = ParseLsdAnnounce(Bytes(*wire));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host, a.host);
  EXPECT_EQ(b->port, a.port);
  EXPECT_EQ(b->info_hashes, a.info_hashes);
  EXPECT_EQ(b->cookie, a.cookie);
}

TEST(LsdMessage, HeaderNamesAnyCaseBareLfUnknownHeadersAndUppercaseHex) {
  std::string hex = Hex(0xcd);
  for (char& c : hex) c = static_cast<char>(toupper(c));
  const std::string m = "BT-SEARCH * HTTP/1.1\nPORT:  7000 \nX-Other: y\ninfohash:" + hex + "\n";
  absl::StatusOr<LsdAnnounce> a = ParseLsdAnnounce(Bytes(m));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->port, 7000);
  EXPECT_THAT(a->info_hashes, ElementsAre(Hash(0xcd)));
  EXPECT_TRUE(a->host.empty());
  EXPECT_TRUE(a->cookie.empty());
}

TEST(LsdMessage, RefusesMalformed) {
  const std::string ih = "Infohash: " + Hex(1) + "\r\n";
  const std::vector<std::string> bad = {
      "",
      "M-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + ih,
      "BT-SEARCH * HTTP/1.0\r\nPort: 1\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\n" + ih,                       // no port
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n",             // no info-hash
      "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n" + ih,            // port 0
      "BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\n" + ih,        // port too big
      "BT-SEARCH * HTTP/1.1\r\nPort: 99999999999\r\n" + ih,  // would overflow
      "BT-SEARCH * HTTP/1.1\r\nPort: -1\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\n" + ih,  // two ports
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abc\r\n",
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + std::string(40, 'g') + "\r\n",
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + Hex(1) + "00\r\n",
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nno colon here\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n: empty name\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\ncookie: " + std::string(65, 'x') + "\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\ncookie: a\x01 b\r\n" + ih,
      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nHost: " + std::string(65, 'h') + "\r\n" + ih,
  };
  for (const std::string& m : bad) {
    EXPECT_FALSE(ParseLsdAnnounce(Bytes(m)).ok()) << m;
  }
}

TEST(LsdMessage, Bounds) {
  // Over 1400 bytes: refused whatever it holds.
  std::string big = LibtorrentAnnounce(1, 1, "c");
  big += std::string(kMaxMessageBytes - big.size() + 1, ' ');
  EXPECT_FALSE(ParseLsdAnnounce(Bytes(big)).ok());
  // At most kMaxInfoHashes distinct info-hashes; repeats are folded.
  std::string m = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n";
  for (size_t i = 0; i < kMaxInfoHashes; ++i) {
    m += "Infohash: " + Hex(static_cast<uint8_t>(i)) + "\r\n";
  }
  m += "Infohash: " + Hex(0) + "\r\n";
  absl::StatusOr<LsdAnnounce> a = ParseLsdAnnounce(Bytes(m));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->info_hashes.size(), kMaxInfoHashes);
  m += "Infohash: " + Hex(200) + "\r\n";
  EXPECT_THAT(ParseLsdAnnounce(Bytes(m)).status().message(), HasSubstr("too many info-hashes"));
  // At most kMaxHeaders header lines.
  std::string h = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + Hex(1) + "\r\n";
  for (size_t i = 0; i < kMaxHeaders; ++i) h += "X:\r\n";
  EXPECT_THAT(ParseLsdAnnounce(Bytes(h)).status().message(), HasSubstr("too many headers"));
}

TEST(LsdMessage, EncoderRefusesWhatParserWould) {
  LsdAnnounce a;
  a.port = 1;
  EXPECT_FALSE(EncodeLsdAnnounce(a).ok());  // no info-hash
  a.info_hashes = {Hash(1)};
  a.cookie = "two\r\nlines";
  EXPECT_FALSE(EncodeLsdAnnounce(a).ok());
  a.cookie = "ok";
  a.port = 0;
  EXPECT_FALSE(EncodeLsdAnnounce(a).ok());
  a.port = 1;
  for (size_t i = 0; i < kMaxInfoHashes; ++i)
    a.info_hashes.push_back(Hash(static_cast<uint8_t>(i + 2)));
  EXPECT_FALSE(EncodeLsdAnnounce(a).ok());  // 25 info-hashes
  a.info_hashes.pop_back();
  a.host = kLsdHostV6;
  absl::StatusOr<std::string> wire = EncodeLsdAnnounce(a);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_LE(wire->size(), kMaxMessageBytes);
  EXPECT_TRUE(ParseLsdAnnounce(Bytes(*wire)).ok());
}

LsdScheduler::Config TestConfig() {
  LsdScheduler::Config c;
  c.port = 6881;
  c.cookie = "ours";
  c.min_gap_ms = 1000;
  c.max_hashes_per_message = 2;
  return c;
}

std::vector<InfoHash> Announced(const std::optional<std::string>& m) {
  if (!m.has_value()) return {};
  absl::StatusOr<LsdAnnounce> a = ParseLsdAnnounce(Bytes(*m));
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? a->info_hashes : std::vector<InfoHash>{};
}

TEST(LsdScheduler, AnnouncesAtStartThenEveryFiveMinutes) {
  LsdScheduler s(TestConfig());
  EXPECT_EQ(s.NextTimeout().ms, LsdScheduler::kNever.ms);
  s.AddTorrent(1, Hash(1), /*is_private=*/false, Instant{100});
  EXPECT_EQ(s.NextTimeout().ms, 100);
  std::optional<std::string> m = s.Poll(Instant{100});
  ASSERT_TRUE(m.has_value());
  EXPECT_THAT(*m, HasSubstr("Port: 6881\r\n"));
  EXPECT_THAT(*m, HasSubstr("cookie: ours\r\n"));
  EXPECT_THAT(*m, HasSubstr("Host: 239.192.152.143:6771\r\n"));
  EXPECT_THAT(Announced(m), ElementsAre(Hash(1)));
  EXPECT_FALSE(s.Poll(Instant{200}).has_value());
  EXPECT_EQ(s.NextTimeout().ms, 100 + 5 * 60 * 1000);
  EXPECT_FALSE(s.Poll(Instant{100 + 5 * 60 * 1000 - 1}).has_value());
  EXPECT_THAT(Announced(s.Poll(Instant{100 + 5 * 60 * 1000})), ElementsAre(Hash(1)));
}

TEST(LsdScheduler, PrivateTorrentsAreNeverAnnouncedNorMatched) {
  LsdScheduler s(TestConfig());
  s.AddTorrent(1, Hash(1), /*is_private=*/true, Instant{0});
  EXPECT_EQ(s.torrents(), 0u);
  EXPECT_FALSE(s.Poll(Instant{0}).has_value());
  std::vector<LsdScheduler::Found> found;
  ASSERT_TRUE(
      s.HandleDatagram(Bytes(LibtorrentAnnounce(7000, 1, "x")), 0x7f000001, Instant{0}, &found)
          .ok());
  EXPECT_TRUE(found.empty());
}

TEST(LsdScheduler, OneMessagePerGapAcrossTorrentsOldestFirst) {
  LsdScheduler s(TestConfig());
  for (uint8_t i = 1; i <= 5; ++i) s.AddTorrent(i, Hash(i), false, Instant{i});
  EXPECT_THAT(Announced(s.Poll(Instant{10})), ElementsAre(Hash(1), Hash(2)));
  EXPECT_FALSE(s.Poll(Instant{500}).has_value());
  EXPECT_EQ(s.NextTimeout().ms, 1010);
  EXPECT_THAT(Announced(s.Poll(Instant{1010})), ElementsAre(Hash(3), Hash(4)));
  s.RemoveTorrent(5);
  EXPECT_FALSE(s.Poll(Instant{2010}).has_value());
  EXPECT_EQ(s.NextTimeout().ms, 10 + 5 * 60 * 1000);
}

TEST(LsdScheduler, NoPortNoAnnounce) {
  LsdScheduler::Config c = TestConfig();
  c.port = 0;
  LsdScheduler s(c);
  s.AddTorrent(1, Hash(1), false, Instant{0});
  EXPECT_FALSE(s.Poll(Instant{0}).has_value());
  s.set_port(7001);
  EXPECT_THAT(*s.Poll(Instant{0}), HasSubstr("Port: 7001\r\n"));
}

TEST(LsdScheduler, ReceivedAnnouncesBecomePeersOfOurTorrents) {
  LsdScheduler s(TestConfig());
  s.AddTorrent(7, Hash(7), false, Instant{0});
  s.AddTorrent(8, Hash(8), false, Instant{0});
  std::vector<LsdScheduler::Found> found;
  const std::string two = "BT-SEARCH * HTTP/1.1\r\nPort: 7000\r\nInfohash: " + Hex(9) +
                          "\r\nInfohash: " + Hex(8) + "\r\nInfohash: " + Hex(7) + "\r\n\r\n";
  ASSERT_TRUE(s.HandleDatagram(Bytes(two), 0x7f000002, Instant{0}, &found).ok());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].torrent, 8u);
  EXPECT_EQ(found[1].torrent, 7u);
  EXPECT_EQ(found[0].peer, (PeerAddress{0x7f000002, 7000}));
  // Our own announce, looped back by the kernel, is ignored.
  found.clear();
  ASSERT_TRUE(
      s.HandleDatagram(Bytes(LibtorrentAnnounce(6881, 7, "ours")), 0x7f000001, Instant{0}, &found)
          .ok());
  EXPECT_TRUE(found.empty());
  // A sender without a source address names no peer.
  ASSERT_TRUE(s.HandleDatagram(Bytes(two), 0, Instant{0}, &found).ok());
  EXPECT_TRUE(found.empty());
  // A repeat within a minute is reported once; after that, again.
  ASSERT_TRUE(s.HandleDatagram(Bytes(two), 0x7f000002, Instant{59'999}, &found).ok());
  EXPECT_TRUE(found.empty());
  ASSERT_TRUE(s.HandleDatagram(Bytes(two), 0x7f000002, Instant{60'000}, &found).ok());
  EXPECT_EQ(found.size(), 2u);
  // Malformed: an error, nothing found.
  found.clear();
  EXPECT_FALSE(s.HandleDatagram(Bytes("BT-SEARCH"), 1, Instant{0}, &found).ok());
  EXPECT_TRUE(found.empty());
  // A removed torrent is no longer matched.
  s.RemoveTorrent(8);
  ASSERT_TRUE(s.HandleDatagram(Bytes(two), 0x7f000003, Instant{0}, &found).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].torrent, 7u);
}

TEST(LsdScheduler, RecentPeerTableStaysBounded) {
  LsdScheduler::Config c = TestConfig();
  c.max_recent_peers = 8;
  LsdScheduler s(c);
  s.AddTorrent(1, Hash(1), false, Instant{0});
  std::vector<LsdScheduler::Found> found;
  for (uint32_t ip = 1; ip <= 100; ++ip) {
    ASSERT_TRUE(
        s.HandleDatagram(Bytes(LibtorrentAnnounce(7000, 1, "x")), ip, Instant{0}, &found).ok());
  }
  EXPECT_EQ(found.size(), 100u);  // each new sender reported
}

}  // namespace
}  // namespace torrenty::engine::lsd
