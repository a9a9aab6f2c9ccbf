// BEP 16 super-seeding: the hand-out order of engine/torrent/super_seed.h, and engine::Torrent
// as a super-seeder driven by raw peers and by the in-memory swarm (tests/testing/torrent_sim.h):
// no bitfield, one piece shown at a time, the next only once the last was seen elsewhere or
// finished, nothing served that was not shown, and a swarm that completes from about one copy.
#include "engine/torrent/super_seed.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using torrenty::testing::Swarm;
using torrenty::testing::WireEvent;
using wire::MsgType;

// ---------------------------------------------------------------------------------------------
// The hand-out order

TEST(SuperSeedTest, EveryPieceIsHandedOutOnceBeforeAnyRepeat) {
  constexpr uint32_t kPieces = 37;
  SuperSeed ss(kPieces, nullptr, 7);
  PiecePicker picker(kPieces, 7);
  const Bitfield none(kPieces);
  std::vector<uint32_t> handed;
  for (PeerKey key = 1; key <= 2 * kPieces; ++key) {
    ss.AddPeer(key);
    // The second round is of repeats, which a peer is shown only once idle too long.
    std::optional<uint32_t> p = ss.Advance(key, none, picker, /*repeat=*/key > kPieces);
    ASSERT_TRUE(p.has_value());
    handed.push_back(*p);
  }
  // The first kPieces peers got kPieces different pieces, and so did the next kPieces.
  EXPECT_EQ(std::set<uint32_t>(handed.begin(), handed.begin() + kPieces).size(), kPieces);
  EXPECT_EQ(std::set<uint32_t>(handed.begin() + kPieces, handed.end()).size(), kPieces);
  for (uint32_t p = 0; p < kPieces; ++p) EXPECT_EQ(ss.handed(p), 2u);
}

TEST(SuperSeedTest, ShardsSharingCountsDoNotRepeatEachOther) {
  constexpr uint32_t kPieces = 20;
  LocalSuperSeedCounts counts(kPieces);
  SuperSeed a(kPieces, &counts, 1), b(kPieces, &counts, 2);
  PiecePicker picker(kPieces, 1);
  const Bitfield none(kPieces);
  std::set<uint32_t> seen;
  for (PeerKey key = 1; key <= kPieces / 2; ++key) {
    a.AddPeer(key);
    b.AddPeer(key);
    seen.insert(*a.Advance(key, none, picker));
    seen.insert(*b.Advance(key, none, picker));
  }
  EXPECT_EQ(seen.size(), kPieces);
}

TEST(SuperSeedTest, PrefersRarePiecesAndSkipsWhatThePeerHasOrWasShown) {
  constexpr uint32_t kPieces = 8;
  SuperSeed ss(kPieces, nullptr, 3);
  PiecePicker picker(kPieces, 3);
  Bitfield common(kPieces);
  for (uint32_t p = 0; p < kPieces; ++p)
    if (p != 5) common.Set(p);
  picker.AddPeer(common);  // every piece but 5 is present once in the swarm
  ss.AddPeer(1);
  Bitfield has(kPieces);
  EXPECT_EQ(ss.Advance(1, has, picker), 5u);
  EXPECT_TRUE(ss.Shown(1, 5));
  EXPECT_EQ(ss.Current(1), 5u);
  has.SetAll();
  has.Clear(5);
  has.Clear(2);
  // 5 was shown already: the one piece left is 2.
  EXPECT_EQ(ss.Advance(1, has, picker), 2u);
  EXPECT_EQ(ss.Advance(1, has, picker), std::nullopt);
  EXPECT_EQ(ss.Current(1), std::nullopt);
  EXPECT_EQ(ss.Advance(99, has, picker), std::nullopt);  // not tracked
}

// Once every piece has gone out, a piece a peer announced or some peer is fetching is not handed
// out again (the swarm spreads it), and a peer with nothing left to be shown waits; a piece whose
// recipient left without announcing it is handed out again, and `repeat` (a peer idle too long)
// lifts the rule.
TEST(SuperSeedTest, NoRepeatOfAPieceTheSwarmHasOrIsFetching) {
  constexpr uint32_t kPieces = 6;
  SuperSeed ss(kPieces, nullptr, 5);
  PiecePicker picker(kPieces, 5);
  const Bitfield none(kPieces);
  std::vector<uint32_t> first;
  for (PeerKey key = 1; key <= kPieces; ++key) {
    ss.AddPeer(key);
    first.push_back(*ss.Advance(key, none, picker));
  }
  ss.AddPeer(100);
  // Every piece is some peer's current one: nothing to show the newcomer.
  EXPECT_EQ(ss.Advance(100, none, picker), std::nullopt);
  EXPECT_EQ(ss.Idle().size(), 1u);
  // Peer 1 announces its piece and is advanced: it is shown nothing (all handed out), and its
  // piece, now in the swarm, is not shown to the newcomer either.
  ss.NoteSeen(first[0]);
  EXPECT_EQ(ss.Advance(1, none, picker), std::nullopt);
  EXPECT_EQ(ss.Advance(100, none, picker), std::nullopt);
  // Peer 2 leaves without announcing its piece: that one nobody has, so it goes out again.
  ss.RemovePeer(2);
  EXPECT_EQ(ss.Advance(100, none, picker), first[1]);
  EXPECT_EQ(ss.handed(first[1]), 2u);
  EXPECT_EQ(ss.Advance(1, none, picker), std::nullopt);  // now peer 100's current
  // A peer idle too long is shown a repeat rather than left stalled.
  const std::optional<uint32_t> again = ss.Advance(1, none, picker, /*repeat=*/true);
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(*again, first[0]);  // never one it was shown before
  EXPECT_EQ(ss.handed(*again), 2u);
}

// ---------------------------------------------------------------------------------------------
// The torrent as a super-seeder

struct Content {
  std::vector<uint8_t> payload;
  Metainfo meta;
};

Content MakeContent(uint64_t seed, uint32_t num_pieces, int64_t piece_length,
                    bool is_private = false) {
  std::mt19937_64 rng(seed);
  Content c;
  c.payload = torrenty::testing::RandomBytes(rng, static_cast<size_t>(piece_length) * num_pieces);
  c.meta = torrenty::testing::MakeMetainfo(c.payload, piece_length);
  c.meta.is_private = is_private;
  return c;
}

std::vector<uint8_t> Handshake(const InfoHash& info_hash, uint32_t id, bool fast) {
  std::vector<uint8_t> out(wire::kHandshakeSize);
  std::array<uint8_t, 8> reserved{};
  if (fast) reserved[wire::kFastReservedByte] |= wire::kFastReservedBit;
  wire::EncodeHandshake(info_hash, torrenty::testing::MakeSimPeerId(3000 + id), reserved,
                        out.data());
  return out;
}

std::vector<uint8_t> Simple(MsgType type) {
  std::vector<uint8_t> out(wire::kSimpleSize);
  wire::EncodeSimple(type, out.data());
  return out;
}

std::vector<uint8_t> Have(uint32_t piece) {
  std::vector<uint8_t> out(9);
  wire::EncodeHave(piece, out.data());
  return out;
}

std::vector<uint8_t> Request(uint32_t index, uint32_t begin, uint32_t length) {
  std::vector<uint8_t> out(wire::kRequestSize);
  wire::EncodeRequest(index, begin, length, out.data());
  return out;
}

std::vector<uint8_t> Concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<uint32_t> Haves(const std::vector<WireEvent>& events) {
  std::vector<uint32_t> out;
  for (const WireEvent& e : events)
    if (e.type == MsgType::kHave) out.push_back(e.index);
  return out;
}

size_t Count(const std::vector<WireEvent>& events, MsgType type) {
  return static_cast<size_t>(std::count_if(events.begin(), events.end(),
                                           [&](const WireEvent& e) { return e.type == type; }));
}

bool Has(const std::vector<WireEvent>& events, MsgType type, uint32_t index) {
  return std::any_of(events.begin(), events.end(),
                     [&](const WireEvent& e) { return e.type == type && e.index == index; });
}

TorrentConfig SuperSeedConfig() {
  TorrentConfig c;
  c.super_seed = true;
  return c;
}

const PeerAddress kRawA{0x0A0001C8, 50000};
const PeerAddress kRawB{0x0A0002C8, 50001};

class SuperSeedTorrentTest : public ::testing::TestWithParam<bool> {};  // private torrent?

// No bitfield: have_none to a Fast peer, nothing to a plain one, then exactly one have each.
TEST_P(SuperSeedTorrentTest, NoBitfieldAndOnePieceAtATime) {
  const Content content = MakeContent(1, 24, 32 * 1024, GetParam());
  Swarm sim(content.meta, content.payload, {.seed = 1});
  const int s = sim.AddClient(true, SuperSeedConfig());
  const int a = sim.AttachRaw(s, kRawA);
  const int b = sim.AttachRaw(s, kRawB);
  sim.RawSend(a, Concat({Handshake(content.meta.info_hash, 1, true), Simple(MsgType::kHaveNone),
                         Simple(MsgType::kInterested)}));
  sim.RawSend(b,
              Concat({Handshake(content.meta.info_hash, 2, false), Simple(MsgType::kInterested)}));
  sim.RunUntil([] { return false; }, 3'000);
  const std::vector<WireEvent>& to_a = sim.pipe(a).end[0].tap.events();
  const std::vector<WireEvent>& to_b = sim.pipe(b).end[0].tap.events();
  ASSERT_FALSE(to_a.empty());
  ASSERT_FALSE(to_b.empty());
  EXPECT_EQ(to_a.front().type, MsgType::kHaveNone);
  EXPECT_EQ(to_b.front().type, MsgType::kHave);
  for (const auto* out : {&to_a, &to_b}) {
    EXPECT_EQ(Count(*out, MsgType::kBitfield), 0u);
    EXPECT_EQ(Count(*out, MsgType::kHaveAll), 0u);
    EXPECT_EQ(Count(*out, MsgType::kAllowedFast), 0u);
    EXPECT_EQ(Haves(*out).size(), 1u);
  }
  EXPECT_NE(Haves(to_a)[0], Haves(to_b)[0]);  // a piece is handed out once before repeating
  EXPECT_TRUE(sim.pipe(a).open);
  EXPECT_TRUE(sim.pipe(b).open);
}

// Nothing new is shown while a peer's piece exists only at the seed: A is shown its next piece
// once B announces A's piece, and B its next once B announces its own.
TEST_P(SuperSeedTorrentTest, NextPieceOnlyOnceTheLastWasSeenElsewhereOrFinished) {
  const Content content = MakeContent(2, 24, 32 * 1024, GetParam());
  Swarm sim(content.meta, content.payload, {.seed = 2});
  const int s = sim.AddClient(true, SuperSeedConfig());
  const int a = sim.AttachRaw(s, kRawA);
  const int b = sim.AttachRaw(s, kRawB);
  sim.RawSend(a, Concat({Handshake(content.meta.info_hash, 1, true), Simple(MsgType::kHaveNone)}));
  sim.RawSend(b, Concat({Handshake(content.meta.info_hash, 2, true), Simple(MsgType::kHaveNone)}));
  sim.RunUntil([] { return false; }, 2'000);
  const auto haves_a = [&] { return Haves(sim.pipe(a).end[0].tap.events()); };
  const auto haves_b = [&] { return Haves(sim.pipe(b).end[0].tap.events()); };
  ASSERT_EQ(haves_a().size(), 1u);
  ASSERT_EQ(haves_b().size(), 1u);
  const uint32_t pa = haves_a()[0], pb = haves_b()[0];

  // B announcing some other piece changes nothing for A; time alone neither.
  uint32_t other = 0;
  while (other == pa || other == pb) ++other;
  sim.RawSend(b, Have(other));
  sim.RunUntil([] { return false; }, 30'000);
  EXPECT_EQ(haves_a().size(), 1u);
  EXPECT_EQ(haves_b().size(), 1u);

  // B announces A's piece: A's piece now lives elsewhere, so A is shown its next one.
  sim.RawSend(b, Have(pa));
  ASSERT_TRUE(sim.RunUntil([&] { return haves_a().size() == 2; }, 2'000));
  EXPECT_NE(haves_a()[1], pa);
  EXPECT_EQ(haves_b().size(), 1u);  // B still has not finished its own

  // B announces its own piece (it finished it): B gets the next.
  sim.RawSend(b, Have(pb));
  ASSERT_TRUE(sim.RunUntil([&] { return haves_b().size() == 2; }, 2'000));
  const std::set<uint32_t> shown{pa, pb, haves_a()[1], haves_b()[1]};
  EXPECT_EQ(shown.size(), 4u);  // still no piece handed out twice
}

// Requests for pieces the peer was not shown are rejected (Fast) or ignored, never served.
TEST_P(SuperSeedTorrentTest, RequestsForPiecesNotShownAreRefused) {
  const Content content = MakeContent(3, 24, 32 * 1024, GetParam());
  Swarm sim(content.meta, content.payload, {.seed = 3});
  const int s = sim.AddClient(true, SuperSeedConfig());
  const int a = sim.AttachRaw(s, kRawA);
  const int b = sim.AttachRaw(s, kRawB);
  sim.RawSend(a, Concat({Handshake(content.meta.info_hash, 1, true), Simple(MsgType::kHaveNone),
                         Simple(MsgType::kInterested)}));
  sim.RawSend(b,
              Concat({Handshake(content.meta.info_hash, 2, false), Simple(MsgType::kInterested)}));
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        return Count(sim.pipe(a).end[0].tap.events(), MsgType::kUnchoke) > 0 &&
               Count(sim.pipe(b).end[0].tap.events(), MsgType::kUnchoke) > 0;
      },
      5'000));
  const uint32_t pa = Haves(sim.pipe(a).end[0].tap.events())[0];
  const uint32_t pb = Haves(sim.pipe(b).end[0].tap.events())[0];
  const uint32_t hidden = (std::max(pa, pb) + 1) % content.meta.num_pieces();
  sim.RawSend(a, Concat({Request(hidden, 0, kBlockSize), Request(pb, 0, kBlockSize),
                         Request(pa, 0, kBlockSize)}));
  sim.RawSend(b, Concat({Request(hidden, 0, kBlockSize), Request(pb, 0, kBlockSize)}));
  sim.RunUntil([] { return false; }, 2'000);
  const std::vector<WireEvent>& to_a = sim.pipe(a).end[0].tap.events();
  const std::vector<WireEvent>& to_b = sim.pipe(b).end[0].tap.events();
  EXPECT_FALSE(Has(to_a, MsgType::kPiece, hidden));
  EXPECT_FALSE(Has(to_a, MsgType::kPiece, pb));
  EXPECT_TRUE(Has(to_a, MsgType::kRejectRequest, hidden));
  EXPECT_TRUE(Has(to_a, MsgType::kRejectRequest, pb));
  EXPECT_TRUE(Has(to_a, MsgType::kPiece, pa));
  EXPECT_FALSE(Has(to_b, MsgType::kPiece, hidden));
  EXPECT_EQ(Count(to_b, MsgType::kRejectRequest), 0u);  // no Fast: silently ignored
  EXPECT_TRUE(Has(to_b, MsgType::kPiece, pb));
  EXPECT_TRUE(sim.pipe(a).open);
  EXPECT_TRUE(sim.pipe(b).open);
}

// A peer that becomes not interested with nothing queued stays unchoked, so once interested
// again (a super-seeded peer shown its next piece, a fleet host that sees a piece it lacks) it
// requests at once: no choke, no second unchoke, no round trip lost per piece.
TEST_P(SuperSeedTorrentTest, NotInterestedPeerStaysUnchoked) {
  const Content content = MakeContent(5, 24, 32 * 1024, GetParam());
  Swarm sim(content.meta, content.payload, {.seed = 5});
  const int s = sim.AddClient(true, SuperSeedConfig());
  const int a = sim.AttachRaw(s, kRawA);
  sim.RawSend(a, Concat({Handshake(content.meta.info_hash, 1, true), Simple(MsgType::kHaveNone),
                         Simple(MsgType::kInterested)}));
  const auto out = [&]() -> const std::vector<WireEvent>& {
    return sim.pipe(a).end[0].tap.events();
  };
  ASSERT_TRUE(sim.RunUntil([&] { return Count(out(), MsgType::kUnchoke) > 0; }, 5'000));
  const uint32_t first = Haves(out())[0];
  sim.RawSend(a, Concat({Request(first, 0, kBlockSize), Request(first, kBlockSize, kBlockSize)}));
  ASSERT_TRUE(sim.RunUntil([&] { return Count(out(), MsgType::kPiece) == 2; }, 5'000));
  // It has the piece and wants nothing more: the seed shows it the next one.
  sim.RawSend(a, Concat({Have(first), Simple(MsgType::kNotInterested)}));
  ASSERT_TRUE(sim.RunUntil([&] { return Haves(out()).size() == 2; }, 5'000));
  const uint32_t next = Haves(out())[1];
  sim.RawSend(a, Concat({Simple(MsgType::kInterested), Request(next, 0, kBlockSize)}));
  ASSERT_TRUE(sim.RunUntil([&] { return Has(out(), MsgType::kPiece, next); }, 5'000));
  EXPECT_EQ(Count(out(), MsgType::kChoke), 0u);
  EXPECT_EQ(Count(out(), MsgType::kUnchoke), 1u);
}

// Four leechers that know each other complete from a super-seeder whose upload is capped, and
// the origin uploads about one copy; the same swarm from an ordinary seed costs it more.
int64_t OriginUpload(bool super_seed, bool is_private, int num_leechers = 4) {
  const Content content = MakeContent(4, 64, 32 * 1024, is_private);
  Swarm sim(content.meta, content.payload, {.seed = 4});
  const int s = sim.AddClient(true, super_seed ? SuperSeedConfig() : TorrentConfig{});
  sim.client(s).upload_per_step = 16 * 1024;
  std::vector<int> leechers;
  for (int i = 0; i < num_leechers; ++i) leechers.push_back(sim.AddClient(false));
  for (size_t i = 0; i < leechers.size(); ++i) {
    sim.Introduce(leechers[i], s);
    for (size_t j = 0; j < i; ++j) sim.Introduce(leechers[i], leechers[j]);
  }
  const bool done = sim.RunUntil(
      [&] {
        return std::all_of(leechers.begin(), leechers.end(),
                           [&](int l) { return sim.client(l).completed; });
      },
      600'000);
  EXPECT_TRUE(done);
  for (int l : leechers) EXPECT_TRUE(sim.client(l).disk == sim.payload());
  return sim.client(s).torrent->stats().uploaded_payload;
}

TEST_P(SuperSeedTorrentTest, SwarmCompletesFromAboutOneCopy) {
  const int64_t size = 64 * 32 * 1024;
  const int64_t super = OriginUpload(true, GetParam());
  const int64_t plain = OriginUpload(false, GetParam());
  // One copy and at most a piece or two more (a piece fetched while its holder announced it).
  EXPECT_LE(super, size + size / 20) << "plain seeding uploaded " << plain;
  EXPECT_GT(plain, super);
  RecordProperty("origin_upload_super", static_cast<int>(super));
  RecordProperty("origin_upload_plain", static_cast<int>(plain));
}

// More leechers than the seed's unchoke slots (4 + 1): a super-seeded peer is never left choked
// holding its piece hostage, and the origin still sends about one copy.
TEST_P(SuperSeedTorrentTest, MoreLeechersThanUnchokeSlotsFromAboutOneCopy) {
  const int64_t size = 64 * 32 * 1024;
  const int64_t super = OriginUpload(true, GetParam(), 8);
  EXPECT_LE(super, size + size / 20);
}

INSTANTIATE_TEST_SUITE_P(PublicAndPrivate, SuperSeedTorrentTest, ::testing::Bool());

}  // namespace
}  // namespace torrenty::engine
