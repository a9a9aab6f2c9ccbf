// Tests for the BEP 11 ut_pex codec and per-connection state (engine/pex/ut_pex.h).
#include <string>
#include <vector>

#include "engine/codec/bencode.h"
#include "engine/pex/ut_pex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine::pex {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

PexEndpoint V4(uint32_t ip, uint16_t port) { return PexEndpoint::FromV4(PeerAddress{ip, port}); }

PexEndpoint V6(uint8_t last, uint16_t port) {
  std::array<uint8_t, 16> ip{};
  ip[0] = 0x20;
  ip[1] = 0x01;
  ip[15] = last;
  return PexEndpoint::FromV6(ip, port);
}

PexPeer Peer(PexEndpoint e, uint8_t flags = 0) { return PexPeer{e, flags}; }

std::string Compact4(uint32_t ip, uint16_t port) {
  std::string s;
  for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>(ip >> sh));
  s.push_back(static_cast<char>(port >> 8));
  s.push_back(static_cast<char>(port));
  return s;
}

std::string Str(const std::string& s) { return std::to_string(s.size()) + ":" + s; }

TEST(PexCodec, ParsesLibtorrentStyleMessage) {
  // d5:added12:<2 peers>7:added.f2:<flags>7:dropped6:<1 peer>e
  const std::string added = Compact4(0x7f000001, 6881) + Compact4(0x0a000002, 51413);
  const std::string m = "d5:added" + Str(added) + "7:added.f" + Str(std::string("\x12\x00", 2)) +
                        "7:dropped" + Str(Compact4(0xc0a80001, 1000)) + "e";
  absl::StatusOr<PexMessage> p = ParsePex(Bytes(m));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->added, ElementsAre(Peer(V4(0x7f000001, 6881), 0x12), Peer(V4(0x0a000002, 51413))));
  EXPECT_THAT(p->dropped, ElementsAre(V4(0xc0a80001, 1000)));
  EXPECT_EQ(p->added[0].endpoint.ToString(), "127.0.0.1:6881");
  EXPECT_EQ(p->added[0].endpoint.v4(), (PeerAddress{0x7f000001, 6881}));
}

TEST(PexCodec, RoundTripsBothFamilies) {
  PexMessage m;
  m.added = {Peer(V4(1, 2), kPexSeed), Peer(V6(1, 3), kPexOutgoing), Peer(V4(5, 6))};
  m.dropped = {V6(9, 10), V4(7, 8)};
  const std::string wire = EncodePex(m);
  // Keys in bencode order, so a strict decoder (and libtorrent) takes it.
  absl::StatusOr<bencode::Value> v = bencode::Decode(wire);
  ASSERT_TRUE(v.ok()) << v.status();
  std::vector<std::string> keys;
  for (const auto& [k, val] : v->dict) keys.emplace_back(k);
  EXPECT_THAT(keys, ElementsAre("added", "added.f", "added6", "added6.f", "dropped", "dropped6"));
  absl::StatusOr<PexMessage> p = ParsePex(Bytes(wire));
  ASSERT_TRUE(p.ok()) << p.status();
  // IPv4 entries come first.
  EXPECT_THAT(p->added,
              ElementsAre(Peer(V4(1, 2), kPexSeed), Peer(V4(5, 6)), Peer(V6(1, 3), kPexOutgoing)));
  EXPECT_THAT(p->dropped, ElementsAre(V4(7, 8), V6(9, 10)));
  EXPECT_EQ(V6(1, 3).ToString(), "[2001:0:0:0:0:0:0:1]:3");
  EXPECT_EQ(EncodePex(PexMessage{}), "de");
}

TEST(PexCodec, RefusesMalformed) {
  const std::vector<std::string> bad = {
      "",
      "le",
      "i1e",
      "d5:added5:abcdee",                           // not whole 6-byte entries
      "d6:added617:" + std::string(17, 'x') + "e",  // not whole 18-byte entries
      "d7:dropped1:xe",
      "d5:addedi1ee",  // not a string
      "d7:added.fi1ee",
      "d5:added6:abcdef",                  // truncated
      "d5:added6:abcdef5:added6:abcdefe",  // repeated key
  };
  for (const std::string& m : bad) EXPECT_FALSE(ParsePex(Bytes(m)).ok()) << m;
  std::string big = "d1:x" + Str(std::string(kMaxPexPayloadBytes, 'a')) + "e";
  EXPECT_THAT(ParsePex(Bytes(big)).status().message(), HasSubstr("8 KiB"));
}

TEST(PexCodec, BoundsFlagsAndPortZero) {
  // 60 added, 60 dropped: the first 50 of each are taken.
  std::string added, dropped;
  for (uint32_t i = 1; i <= 60; ++i) {
    added += Compact4(i, 1000);
    dropped += Compact4(i, 2000);
  }
  absl::StatusOr<PexMessage> p =
      ParsePex(Bytes("d5:added" + Str(added) + "7:dropped" + Str(dropped) + "e"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->added.size(), kMaxPexAdded);
  EXPECT_EQ(p->dropped.size(), kMaxPexDropped);
  EXPECT_EQ(p->added.back().endpoint, V4(50, 1000));
  // Flags of the wrong length are ignored; port 0 entries are skipped; unknown keys ignored.
  p = ParsePex(
      Bytes("d5:added" + Str(Compact4(1, 0) + Compact4(2, 7)) + "7:added.f1:\x02" + "3:zzzi5ee"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->added, ElementsAre(Peer(V4(2, 7), 0)));
  // The encoder keeps within the bounds too.
  PexMessage m;
  for (uint32_t i = 1; i <= 60; ++i) m.added.push_back(Peer(V4(i, 1)));
  p = ParsePex(Bytes(EncodePex(m)));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->added.size(), kMaxPexAdded);
}

std::vector<PexEndpoint> Added(const PexMessage& m) {
  std::vector<PexEndpoint> out;
  for (const PexPeer& p : m.added) out.push_back(p.endpoint);
  return out;
}

PexMessage Decode(const std::optional<std::string>& payload) {
  EXPECT_TRUE(payload.has_value());
  if (!payload.has_value()) return {};
  absl::StatusOr<PexMessage> m = ParsePex(Bytes(*payload));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : PexMessage{};
}

TEST(PexState, FirstMessageAtOnceThenDiffsOncePerMinute) {
  const PexEndpoint remote = V4(100, 100);
  PexState s(/*torrent_is_private=*/false, remote);
  EXPECT_EQ(s.NextDue().ms, 0);
  std::vector<PexPeer> connected = {Peer(V4(1, 1), kPexSeed), Peer(remote), Peer(V6(2, 2))};
  PexMessage m = Decode(s.Poll(Instant{5}, connected));
  // The remote peer itself is never sent back to it.
  EXPECT_THAT(Added(m), UnorderedElementsAre(V4(1, 1), V6(2, 2)));
  EXPECT_EQ(m.added[0].flags, kPexSeed);
  EXPECT_TRUE(m.dropped.empty());
  EXPECT_EQ(s.NextDue().ms, 60'005);

  connected = {Peer(V4(1, 1)), Peer(V4(3, 3))};
  EXPECT_FALSE(s.Poll(Instant{60'004}, connected).has_value());
  m = Decode(s.Poll(Instant{60'005}, connected));
  EXPECT_THAT(Added(m), ElementsAre(V4(3, 3)));
  EXPECT_THAT(m.dropped, ElementsAre(V6(2, 2)));
  EXPECT_EQ(s.advertised(), 2u);

  // Nothing changed: no message, and the next change may go out as soon as it happens.
  EXPECT_FALSE(s.Poll(Instant{120'005}, connected).has_value());
  connected.pop_back();
  m = Decode(s.Poll(Instant{130'000}, connected));
  EXPECT_TRUE(m.added.empty());
  EXPECT_THAT(m.dropped, ElementsAre(V4(3, 3)));
}

TEST(PexState, AtMostFiftyAddedPerMessageRestNextTime) {
  PexState s(false, V4(999, 1));
  std::vector<PexPeer> connected;
  for (uint32_t i = 1; i <= 70; ++i) {
    connected.push_back(Peer(V4(i, 1)));
    connected.push_back(Peer(V4(i, 1)));  // listed twice: sent once
  }
  EXPECT_EQ(Decode(s.Poll(Instant{0}, connected)).added.size(), 50u);
  EXPECT_EQ(Decode(s.Poll(Instant{60'000}, connected)).added.size(), 20u);
  EXPECT_FALSE(s.Poll(Instant{120'000}, connected).has_value());
  // All gone: at most 50 dropped per message.
  EXPECT_EQ(Decode(s.Poll(Instant{180'000}, {})).dropped.size(), 50u);
  EXPECT_EQ(Decode(s.Poll(Instant{240'000}, {})).dropped.size(), 20u);
  EXPECT_EQ(s.advertised(), 0u);
}

TEST(PexState, PrivateTorrentNeverSendsNorTakes) {
  PexState s(/*torrent_is_private=*/true, V4(100, 100));
  EXPECT_EQ(s.NextDue().ms, PexState::kNever.ms);
  EXPECT_FALSE(s.Poll(Instant{0}, {Peer(V4(1, 1))}).has_value());
  const std::string msg = "d5:added" + Str(Compact4(1, 1)) + "e";
  absl::StatusOr<PexMessage> m = s.HandleMessage(Bytes(msg), Instant{0});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->added.empty());
  EXPECT_EQ(s.dropped_messages(), 1u);
}

TEST(PexState, ReceivedMessagesAreRateLimitedAndChecked) {
  PexState s(false, V4(100, 100));
  const std::string msg = "d5:added" + Str(Compact4(1, 1)) + "e";
  absl::StatusOr<PexMessage> m = s.HandleMessage(Bytes(msg), Instant{0});
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(Added(*m), ElementsAre(V4(1, 1)));
  // Sooner than 10 s after the last one: dropped unread (even if malformed).
  m = s.HandleMessage(Bytes("garbage"), Instant{9'999});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->added.empty());
  EXPECT_EQ(s.dropped_messages(), 1u);
  EXPECT_FALSE(s.HandleMessage(Bytes("garbage"), Instant{10'000}).ok());
  m = s.HandleMessage(Bytes(msg), Instant{10'000});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->added.size(), 1u);
}

}  // namespace
}  // namespace torrenty::engine::pex
