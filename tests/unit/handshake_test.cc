// What engine::Torrent sends around the handshake: the handshake alone until the remote handshake
// is read (aria2c bans a peer that sends more first), then its bitfield, in both directions.
#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent.h"
#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

constexpr uint32_t kPieces = 12;
constexpr uint32_t kPieceLength = 16 * 1024;

Metainfo MakeMeta() {
  Metainfo m;
  m.name = "hs.bin";
  m.piece_length = kPieceLength;
  m.total_length = int64_t{kPieces} * kPieceLength;
  m.piece_hashes.resize(kPieces);
  m.info_hash.fill(0x42);
  m.files.push_back(FileEntry{.path = {}, .length = m.total_length, .offset = 0});
  return m;
}

TorrentConfig Config() {
  TorrentConfig cfg;
  cfg.self_id.fill(0xEE);
  return cfg;
}

std::vector<uint8_t> RemoteHandshake(const Metainfo& meta) {
  std::vector<uint8_t> hs(wire::kHandshakeSize);
  PeerId id{};
  id.fill(0x11);
  wire::EncodeHandshake(meta.info_hash, id, hs.data());
  return hs;
}

// One engine; records every byte it hands out for each peer, as the session would send them.
class Engine {
 public:
  Engine() : meta_(MakeMeta()), torrent_(meta_, Config()) {}

  Torrent& t() { return torrent_; }
  const Metainfo& meta() const { return meta_; }
  const std::vector<uint8_t>& sent(PeerKey key) { return sent_[key]; }

  void Connect(PeerKey key, bool outgoing) {
    torrent_.HandlePeerConnected(key, PeerAddress{0x7F000001, static_cast<uint16_t>(6000 + key)},
                                 outgoing, Instant{1000});
    Pump();
  }
  size_t Receive(PeerKey key, absl::Span<const uint8_t> bytes) {
    const size_t n = torrent_.HandleBytes(key, bytes, Instant{1000});
    Pump();
    return n;
  }

  // The messages after our handshake (which must be there, whole, and come first).
  std::vector<wire::Message> Messages(PeerKey key) {
    const std::vector<uint8_t>& s = sent_[key];
    std::vector<wire::Message> out;
    EXPECT_GE(s.size(), wire::kHandshakeSize);
    if (s.size() < wire::kHandshakeSize) return out;
    absl::StatusOr<wire::Handshake> hs =
        wire::ParseHandshake(absl::MakeConstSpan(s).subspan(0, wire::kHandshakeSize));
    EXPECT_TRUE(hs.ok());
    if (hs.ok()) {
      EXPECT_EQ(hs->info_hash, meta_.info_hash);
      // BEP 10 (reserved[5] & 0x10) and BEP 6 Fast (reserved[7] & 0x04) are advertised; these
      // peers set neither, so the bitfield rules of BEP 3 apply to them.
      EXPECT_EQ(hs->reserved, (std::array<uint8_t, 8>{0, 0, 0, 0, 0, 0x10, 0, 0x04}));
      EXPECT_TRUE(wire::SupportsFast(hs->reserved));
    }
    size_t off = wire::kHandshakeSize;
    while (off < s.size()) {
      wire::Message m;
      absl::StatusOr<size_t> n =
          wire::ParseMessage(absl::MakeConstSpan(s).subspan(off), 1 << 20, &m);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      out.push_back(m);
      off += *n;
    }
    EXPECT_EQ(off, s.size()) << "a partial message was handed out";
    return out;
  }

 private:
  void Pump() {
    std::vector<Action> batch;
    for (torrent_.TakeActions(&batch); !batch.empty(); torrent_.TakeActions(&batch)) {
      for (const Action& a : batch) {
        if (a.type != Action::Type::kFlush) continue;
        for (absl::Span<const uint8_t> out = torrent_.NextSend(a.peer); !out.empty();
             out = torrent_.NextSend(a.peer)) {
          sent_[a.peer].insert(sent_[a.peer].end(), out.begin(), out.end());
          torrent_.HandleSent(a.peer, out.size(), Instant{1000});
        }
      }
    }
  }

  Metainfo meta_;
  Torrent torrent_;
  std::map<PeerKey, std::vector<uint8_t>> sent_;
};

Bitfield Pieces(std::initializer_list<uint32_t> set) {
  Bitfield b(kPieces);
  for (uint32_t p : set) b.Set(p);
  return b;
}

std::vector<uint8_t> Bytes(const Bitfield& b) { return {b.bytes().begin(), b.bytes().end()}; }

class HandshakeOrder : public ::testing::TestWithParam<bool /*outgoing*/> {};

TEST_P(HandshakeOrder, BitfieldOnlyAfterTheRemoteHandshake) {
  Engine e;
  e.t().SetHave(Pieces({0, 3, 11}));
  e.Connect(1, GetParam());
  EXPECT_EQ(e.sent(1).size(), wire::kHandshakeSize) << "more than the handshake before theirs";

  // Their handshake, split: nothing more goes out until the last byte of it.
  const std::vector<uint8_t> hs = RemoteHandshake(e.meta());
  EXPECT_EQ(e.Receive(1, absl::MakeConstSpan(hs).subspan(0, 67)), 0u);
  EXPECT_EQ(e.sent(1).size(), wire::kHandshakeSize);
  EXPECT_EQ(e.Receive(1, hs), hs.size());
  ASSERT_TRUE(e.t().IsConnected(1));

  const std::vector<wire::Message> msgs = e.Messages(1);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(msgs[0].type, wire::MsgType::kBitfield);
  Bitfield got(kPieces);
  ASSERT_TRUE(got.AssignFromWire(msgs[0].payload));
  EXPECT_EQ(Bytes(got), Bytes(Pieces({0, 3, 11})));
}

TEST_P(HandshakeOrder, NoBitfieldWithoutPieces) {
  Engine e;
  e.Connect(1, GetParam());
  EXPECT_EQ(e.Receive(1, RemoteHandshake(e.meta())), wire::kHandshakeSize);
  ASSERT_TRUE(e.t().IsConnected(1));
  EXPECT_TRUE(e.Messages(1).empty());
}

TEST_P(HandshakeOrder, OurBitfieldPrecedesAnswersToTheirFirstMessages) {
  // Their handshake, bitfield and interested in one read: our bitfield still comes first.
  Engine e;
  e.t().SetHave(Pieces({1, 2}));
  e.Connect(1, GetParam());
  std::vector<uint8_t> in = RemoteHandshake(e.meta());
  const std::vector<uint8_t> theirs = Bytes(Pieces({5, 6}));
  std::vector<uint8_t> bf(wire::kBitfieldHeaderSize + theirs.size());
  wire::EncodeBitfield(theirs, bf.data());
  in.insert(in.end(), bf.begin(), bf.end());
  std::vector<uint8_t> interested(wire::kSimpleSize);
  wire::EncodeSimple(wire::MsgType::kInterested, interested.data());
  in.insert(in.end(), interested.begin(), interested.end());
  EXPECT_EQ(e.Receive(1, in), in.size());

  const std::vector<wire::Message> msgs = e.Messages(1);
  ASSERT_GE(msgs.size(), 2u);  // bitfield, then interested (they have what we lack), unchoke
  EXPECT_EQ(msgs[0].type, wire::MsgType::kBitfield);
  for (size_t i = 1; i < msgs.size(); ++i) EXPECT_NE(msgs[i].type, wire::MsgType::kBitfield);
}

TEST_P(HandshakeOrder, PieceVerifiedDuringTheHandshakeIsInTheBitfield) {
  // A piece verified between connect and their handshake gets no `have` (they are not
  // handshaken yet), so the bitfield must be built when it is sent.
  Engine e;
  e.t().SetHave(Pieces({0}));
  e.Connect(1, GetParam());
  e.t().HandleRemoteHave(7, Instant{1000});
  EXPECT_EQ(e.sent(1).size(), wire::kHandshakeSize);
  e.Receive(1, RemoteHandshake(e.meta()));
  const std::vector<wire::Message> msgs = e.Messages(1);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(msgs[0].type, wire::MsgType::kBitfield);
  Bitfield got(kPieces);
  ASSERT_TRUE(got.AssignFromWire(msgs[0].payload));
  EXPECT_EQ(Bytes(got), Bytes(Pieces({0, 7})));
}

INSTANTIATE_TEST_SUITE_P(Directions, HandshakeOrder, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Outgoing" : "Incoming";
                         });

}  // namespace
}  // namespace torrenty::engine
