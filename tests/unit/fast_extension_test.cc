// BEP 6 Fast extension: the wire codec of its five messages, the canonical allowed-fast set, and
// engine::Torrent's use of them, driven by the in-memory swarm (tests/testing/torrent_sim.h):
// have all / have none instead of a bitfield, rejects instead of silent drops, allowed-fast
// pieces served and requested while choked, and a rejected block re-requested at once elsewhere.
#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/allowed_fast.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using torrenty::testing::Swarm;
using torrenty::testing::WireEvent;
using wire::MsgType;

// ---------------------------------------------------------------------------------------------
// Codec

wire::Message ParseOne(const std::vector<uint8_t>& buf) {
  wire::Message m;
  absl::StatusOr<size_t> n = wire::ParseMessage(buf, 1 << 20, &m);
  EXPECT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n.value_or(0), buf.size());
  return m;
}

TEST(FastWireTest, HaveAllAndHaveNoneRoundTrip) {
  for (MsgType t : {MsgType::kHaveAll, MsgType::kHaveNone}) {
    std::vector<uint8_t> buf(wire::kSimpleSize);
    ASSERT_EQ(wire::EncodeSimple(t, buf.data()), 5u);
    EXPECT_EQ(buf, (std::vector<uint8_t>{0, 0, 0, 1, static_cast<uint8_t>(t)}));
    EXPECT_EQ(ParseOne(buf).type, t);
  }
  EXPECT_EQ(static_cast<int>(MsgType::kHaveAll), 0x0E);
  EXPECT_EQ(static_cast<int>(MsgType::kHaveNone), 0x0F);
}

TEST(FastWireTest, SuggestAllowedFastAndRejectRoundTrip) {
  std::vector<uint8_t> buf(9);
  ASSERT_EQ(wire::EncodeSuggest(0x01020304, buf.data()), 9u);
  EXPECT_EQ(buf, (std::vector<uint8_t>{0, 0, 0, 5, 0x0D, 1, 2, 3, 4}));
  wire::Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kSuggest);
  EXPECT_EQ(m.index, 0x01020304u);

  ASSERT_EQ(wire::EncodeAllowedFast(7, buf.data()), 9u);
  EXPECT_EQ(buf, (std::vector<uint8_t>{0, 0, 0, 5, 0x11, 0, 0, 0, 7}));
  m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kAllowedFast);
  EXPECT_EQ(m.index, 7u);

  buf.resize(17);
  ASSERT_EQ(wire::EncodeReject(3, 16384, 100, buf.data()), 17u);
  EXPECT_EQ(buf[3], 13);
  EXPECT_EQ(buf[4], 0x10);
  m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kRejectRequest);
  EXPECT_EQ(m.index, 3u);
  EXPECT_EQ(m.begin, 16384u);
  EXPECT_EQ(m.length, 100u);
}

TEST(FastWireTest, WrongLengthsRejected) {
  struct Case {
    int id;
    uint32_t good_len;
  };
  for (const Case c : {Case{13, 5}, Case{14, 1}, Case{15, 1}, Case{16, 13}, Case{17, 5}}) {
    for (uint32_t len : {c.good_len - 1, c.good_len + 1, c.good_len + 4}) {
      if (len == 0) continue;
      std::vector<uint8_t> buf(4 + len, 0);
      buf[3] = static_cast<uint8_t>(len);
      buf[4] = static_cast<uint8_t>(c.id);
      wire::Message m;
      EXPECT_FALSE(wire::ParseMessage(buf, 1 << 20, &m).ok()) << "id " << c.id << " len " << len;
    }
  }
}

TEST(FastWireTest, ReservedBit) {
  std::array<uint8_t, 8> reserved{};
  EXPECT_FALSE(wire::SupportsFast(reserved));
  reserved[7] = 0x04;
  EXPECT_TRUE(wire::SupportsFast(reserved));
  reserved[7] = 0xFB;
  EXPECT_FALSE(wire::SupportsFast(reserved));
}

// BEP 6's own example: 80.4.4.200, info-hash 0xaa * 20, 1313 pieces.
TEST(AllowedFastTest, MatchesTheBepExample) {
  InfoHash hash;
  hash.fill(0xAA);
  const uint32_t ip = (80u << 24) | (4u << 16) | (4u << 8) | 200u;
  EXPECT_EQ(AllowedFastSet(ip, hash, 1313, 7),
            (std::vector<uint32_t>{1059, 431, 808, 1217, 287, 376, 1188}));
  EXPECT_EQ(AllowedFastSet(ip, hash, 1313, 9),
            (std::vector<uint32_t>{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}));
  // Only the /24 counts.
  EXPECT_EQ(AllowedFastSet(ip ^ 0x7F, hash, 1313, 9), AllowedFastSet(ip, hash, 1313, 9));
}

TEST(AllowedFastTest, SmallTorrentGetsEveryPiece) {
  InfoHash hash{};
  std::vector<uint32_t> set = AllowedFastSet(0x0A000001, hash, 4);
  std::sort(set.begin(), set.end());
  EXPECT_EQ(set, (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_TRUE(AllowedFastSet(0x0A000001, hash, 0).empty());
  EXPECT_EQ(AllowedFastSet(0x0A000001, hash, 1000).size(), kAllowedFastSetSize);
}

// ---------------------------------------------------------------------------------------------
// The engine

struct Content {
  std::vector<uint8_t> payload;
  Metainfo meta;
};

Content MakeContent(uint64_t seed, uint32_t num_pieces, int64_t piece_length) {
  std::mt19937_64 rng(seed);
  Content c;
  c.payload = torrenty::testing::RandomBytes(rng, static_cast<size_t>(piece_length) * num_pieces);
  c.meta = torrenty::testing::MakeMetainfo(c.payload, piece_length);
  return c;
}

std::vector<uint8_t> Handshake(const InfoHash& info_hash, uint32_t id, bool fast) {
  std::vector<uint8_t> out(wire::kHandshakeSize);
  std::array<uint8_t, 8> reserved{};
  if (fast) reserved[wire::kFastReservedByte] |= wire::kFastReservedBit;
  wire::EncodeHandshake(info_hash, torrenty::testing::MakeSimPeerId(2000 + id), reserved,
                        out.data());
  return out;
}

std::vector<uint8_t> Simple(MsgType type) {
  std::vector<uint8_t> out(wire::kSimpleSize);
  wire::EncodeSimple(type, out.data());
  return out;
}

std::vector<uint8_t> Request(uint32_t index, uint32_t begin, uint32_t length) {
  std::vector<uint8_t> out(wire::kRequestSize);
  wire::EncodeRequest(index, begin, length, out.data());
  return out;
}

std::vector<uint8_t> Reject(uint32_t index, uint32_t begin, uint32_t length) {
  std::vector<uint8_t> out(17);
  wire::EncodeReject(index, begin, length, out.data());
  return out;
}

std::vector<uint8_t> AllowedFast(uint32_t index) {
  std::vector<uint8_t> out(9);
  wire::EncodeAllowedFast(index, out.data());
  return out;
}

std::vector<uint8_t> Concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

size_t Count(const std::vector<WireEvent>& events, MsgType type) {
  return static_cast<size_t>(std::count_if(events.begin(), events.end(),
                                           [&](const WireEvent& e) { return e.type == type; }));
}

bool Has(const std::vector<WireEvent>& events, MsgType type, uint32_t index, uint32_t begin) {
  return std::any_of(events.begin(), events.end(), [&](const WireEvent& e) {
    return e.type == type && e.index == index && e.begin == begin;
  });
}

bool LogHas(Swarm& sim, int client, const std::string& text) {
  for (const std::string& line : sim.client(client).logs) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

const PeerAddress kRawAddress{0x0A0001C8, 50000};

// The first message after the BEP 10 extension handshake (kUnknown to the wire codec).
MsgType FirstAfterExtensionHandshake(const std::vector<WireEvent>& events) {
  for (const WireEvent& e : events)
    if (e.type != MsgType::kUnknown) return e.type;
  return MsgType::kUnknown;
}

TEST(FastTorrentTest, SeedSaysHaveAllAndLeecherHaveNone) {
  const Content content = MakeContent(1, 24, 32 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 1});
  const int s = sim.AddClient(true);
  const int l = sim.AddClient(false);
  Bitfield some(content.meta.num_pieces());
  some.Set(3);
  const int p = sim.AddClientWith(some);
  sim.Introduce(l, s);
  sim.Introduce(p, s);
  ASSERT_TRUE(
      sim.RunUntil([&] { return sim.client(l).completed && sim.client(p).completed; }, 60'000));
  EXPECT_TRUE(sim.client(l).disk == sim.payload());

  const std::vector<WireEvent> s_to_l = sim.Sent(s, l);
  ASSERT_FALSE(s_to_l.empty());
  EXPECT_EQ(FirstAfterExtensionHandshake(s_to_l), MsgType::kHaveAll);
  EXPECT_EQ(Count(s_to_l, MsgType::kBitfield), 0u);
  const std::vector<WireEvent> l_to_s = sim.Sent(l, s);
  ASSERT_FALSE(l_to_s.empty());
  EXPECT_EQ(FirstAfterExtensionHandshake(l_to_s), MsgType::kHaveNone);
  // With some pieces, the bitfield is still the way to say so.
  const std::vector<WireEvent> p_to_s = sim.Sent(p, s);
  ASSERT_FALSE(p_to_s.empty());
  EXPECT_EQ(FirstAfterExtensionHandshake(p_to_s), MsgType::kBitfield);
  // And -v shows both ends of it.
  EXPECT_TRUE(LogHas(sim, s, "sent have_all"));
  EXPECT_TRUE(LogHas(sim, l, "received have_all"));
  EXPECT_TRUE(LogHas(sim, l, "sent have_none"));
}

TEST(FastTorrentTest, PeerWithoutTheBitGetsABitfieldAndNoFastMessages) {
  const Content content = MakeContent(2, 24, 32 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 2});
  const int s = sim.AddClient(true);
  const int raw = sim.AttachRaw(s, kRawAddress);
  sim.RawSend(raw, Concat({Handshake(content.meta.info_hash, 1, /*fast=*/false),
                           Request(1, 0, kBlockSize)}));
  sim.RunUntil([] { return false; }, 2'000);
  const std::vector<WireEvent>& out = sim.pipe(raw).end[0].tap.events();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front().type, MsgType::kBitfield);
  EXPECT_EQ(Count(out, MsgType::kRejectRequest), 0u);
  EXPECT_EQ(Count(out, MsgType::kAllowedFast), 0u);
  EXPECT_EQ(Count(out, MsgType::kPiece), 0u);

  // Fast messages from it are a protocol error.
  sim.RawSend(raw, Simple(MsgType::kHaveAll));
  sim.RunUntil([&] { return !sim.pipe(raw).open; }, 1'000);
  EXPECT_FALSE(sim.pipe(raw).open);
  ASSERT_FALSE(sim.client(s).closes.empty());
  EXPECT_EQ(sim.client(s).closes.back().reason, CloseReason::kProtocolError);
}

// A Fast peer we choke: requests outside its allowed-fast set are rejected, those inside are
// served, and the set it was sent is the canonical one.
TEST(FastTorrentTest, ChokedPeerIsRejectedExceptForAllowedFastPieces) {
  const Content content = MakeContent(3, 40, 32 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 3});
  const int s = sim.AddClient(true);
  const int raw = sim.AttachRaw(s, kRawAddress);
  // Never interested, so never unchoked.
  sim.RawSend(raw, Concat({Handshake(content.meta.info_hash, 1, /*fast=*/true),
                           Simple(MsgType::kHaveNone)}));
  sim.RunUntil([] { return false; }, 1'000);

  const std::vector<uint32_t> set =
      AllowedFastSet(kRawAddress.ip, content.meta.info_hash, content.meta.num_pieces());
  std::vector<uint32_t> offered;
  for (const WireEvent& e : sim.pipe(raw).end[0].tap.events()) {
    if (e.type == MsgType::kAllowedFast) offered.push_back(e.index);
  }
  EXPECT_EQ(offered, set);
  uint32_t outside = 0;
  while (std::find(set.begin(), set.end(), outside) != set.end()) ++outside;

  sim.RawSend(raw,
              Concat({Request(outside, 0, kBlockSize), Request(set[0], kBlockSize, kBlockSize)}));
  sim.RunUntil([] { return false; }, 2'000);
  const std::vector<WireEvent>& out = sim.pipe(raw).end[0].tap.events();
  EXPECT_EQ(Count(out, MsgType::kUnchoke), 0u);
  EXPECT_TRUE(Has(out, MsgType::kRejectRequest, outside, 0));
  EXPECT_FALSE(Has(out, MsgType::kPiece, outside, 0));
  EXPECT_TRUE(Has(out, MsgType::kPiece, set[0], kBlockSize));
  EXPECT_FALSE(Has(out, MsgType::kRejectRequest, set[0], kBlockSize));
  EXPECT_TRUE(sim.pipe(raw).open);
}

// Requests queued when we choke a Fast peer are each rejected, not silently dropped.
TEST(FastTorrentTest, ChokeRejectsQueuedRequests) {
  const Content content = MakeContent(4, 40, 32 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 4});
  const int s = sim.AddClient(true);
  const int raw = sim.AttachRaw(s, kRawAddress);
  sim.RawSend(raw, Concat({Handshake(content.meta.info_hash, 1, /*fast=*/true),
                           Simple(MsgType::kHaveNone), Simple(MsgType::kInterested)}));
  ASSERT_TRUE(sim.RunUntil(
      [&] { return Count(sim.pipe(raw).end[0].tap.events(), MsgType::kUnchoke) > 0; }, 5'000));
  const std::vector<uint32_t> set =
      AllowedFastSet(kRawAddress.ip, content.meta.info_hash, content.meta.num_pieces());
  std::vector<uint32_t> outside;
  for (uint32_t p = 0; p < content.meta.num_pieces() && outside.size() < 5; ++p) {
    if (std::find(set.begin(), set.end(), p) == set.end()) outside.push_back(p);
  }
  // More requests than reads per peer, then not interested in the same segment: the choke comes
  // while most are still queued.
  std::vector<uint8_t> bytes;
  for (uint32_t p : outside) {
    for (uint32_t b = 0; b < 2; ++b) {
      const std::vector<uint8_t> r = Request(p, b * kBlockSize, kBlockSize);
      bytes.insert(bytes.end(), r.begin(), r.end());
    }
  }
  const std::vector<uint8_t> ni = Simple(MsgType::kNotInterested);
  bytes.insert(bytes.end(), ni.begin(), ni.end());
  sim.RawSend(raw, bytes);
  sim.RunUntil([] { return false; }, 2'000);

  const std::vector<WireEvent>& out = sim.pipe(raw).end[0].tap.events();
  EXPECT_GT(Count(out, MsgType::kChoke), 0u);
  // Every request was answered one way or the other, exactly once.
  for (uint32_t p : outside) {
    for (uint32_t b = 0; b < 2; ++b) {
      const bool piece = Has(out, MsgType::kPiece, p, b * kBlockSize);
      const bool reject = Has(out, MsgType::kRejectRequest, p, b * kBlockSize);
      EXPECT_TRUE(piece != reject) << "piece " << p << " block " << b;
    }
  }
  EXPECT_GT(Count(out, MsgType::kRejectRequest), 0u);
  EXPECT_TRUE(LogHas(sim, s, "rejected"));
}

// A Fast peer that rejects a block: it is asked of another peer at once, not after the 60 s snub.
TEST(FastTorrentTest, RejectedBlockIsRequestedElsewhereAtOnce) {
  const Content content = MakeContent(5, 40, 64 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 5});
  const int s = sim.AddClient(true);
  sim.client(s).upload_per_step = 16 * 1024;
  TorrentConfig config;
  config.requests_per_peer_max = 4;
  const int l = sim.AddClient(false, config);
  const int raw = sim.AttachRaw(l, kRawAddress);
  sim.RawSend(raw, Concat({Handshake(content.meta.info_hash, 1, /*fast=*/true),
                           Simple(MsgType::kHaveAll), Simple(MsgType::kUnchoke)}));
  ASSERT_TRUE(sim.RunUntil(
      [&] { return Count(sim.pipe(raw).end[0].tap.events(), MsgType::kRequest) > 0; }, 5'000));
  sim.Introduce(l, s);
  sim.RunUntil([] { return false; }, 1'000);
  WireEvent first;
  for (const WireEvent& e : sim.pipe(raw).end[0].tap.events()) {
    if (e.type == MsgType::kRequest) {
      first = e;
      break;
    }
  }
  ASSERT_FALSE(Has(sim.Sent(l, s), MsgType::kRequest, first.index, first.begin));
  sim.RawSend(raw, Reject(first.index, first.begin, first.length));
  ASSERT_TRUE(sim.RunUntil(
      [&] { return Has(sim.Sent(l, s), MsgType::kRequest, first.index, first.begin); }, 5'000))
      << "the rejected block was not asked of the seeder";
  ASSERT_TRUE(sim.RunUntil([&] { return sim.client(l).completed; }, 120'000));
  EXPECT_TRUE(sim.client(l).disk == sim.payload());
}

// A Fast peer that chokes us but allows some pieces fast: we request those, and only those.
TEST(FastTorrentTest, AllowedFastPiecesAreRequestedWhileChoked) {
  const Content content = MakeContent(6, 20, 32 * 1024);
  Swarm sim(content.meta, content.payload, {.seed = 6});
  const int l = sim.AddClient(false);
  const int raw = sim.AttachRaw(l, kRawAddress);
  sim.RawSend(
      raw, Concat({Handshake(content.meta.info_hash, 1, /*fast=*/true), Simple(MsgType::kHaveAll),
                   AllowedFast(5), AllowedFast(11), AllowedFast(content.meta.num_pieces())}));
  sim.RunUntil([] { return false; }, 2'000);
  // The out-of-range index closes the peer; the first two were taken and requested before.
  const std::vector<WireEvent>& out = sim.pipe(raw).end[0].tap.events();
  EXPECT_EQ(Count(out, MsgType::kRequest), 0u) << "requests went to a peer closed at once";

  const int raw2 = sim.AttachRaw(l, PeerAddress{kRawAddress.ip + 1, 50001});
  sim.RawSend(raw2, Concat({Handshake(content.meta.info_hash, 2, /*fast=*/true),
                            Simple(MsgType::kHaveAll), AllowedFast(5), AllowedFast(11)}));
  sim.RunUntil([] { return false; }, 2'000);
  const std::vector<WireEvent>& out2 = sim.pipe(raw2).end[0].tap.events();
  std::set<uint32_t> asked;
  for (const WireEvent& e : out2) {
    if (e.type == MsgType::kRequest) asked.insert(e.index);
  }
  EXPECT_EQ(asked, (std::set<uint32_t>{5, 11}));
  EXPECT_EQ(Count(out2, MsgType::kRequest), 4u);  // two blocks each

  // A reject while choked withdraws the piece; the other stays requested.
  sim.RawSend(raw2, Reject(5, 0, kBlockSize));
  sim.RunUntil([] { return false; }, 2'000);
  EXPECT_EQ(Count(sim.pipe(raw2).end[0].tap.events(), MsgType::kRequest), 4u);
  EXPECT_TRUE(sim.pipe(raw2).open);
}

}  // namespace
}  // namespace torrenty::engine
