// BEP 10 and BEP 9 in engine::Torrent: the extension bit in our handshake, our extension
// handshake (only to peers that set the bit), dispatch by our local ids, serving the info dict,
// and a whole metadata fetch (engine::MetadataFetch) against a Torrent in memory.
#include <array>
#include <map>
#include <string>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/codec/extension.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/torrent_builder.h"
#include "engine/torrent/metadata_fetch.h"
#include "engine/torrent/torrent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

absl::Span<const uint8_t> B(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Metainfo MakeMeta(int pieces) {
  NewTorrent t;
  t.name = "served.bin";
  t.piece_length = 16384;
  t.files = {FileEntry{{}, int64_t{pieces} * 16384}};
  t.piece_hashes.resize(static_cast<size_t>(pieces));
  for (int i = 0; i < pieces; ++i)
    t.piece_hashes[static_cast<size_t>(i)][0] = static_cast<uint8_t>(i);
  absl::StatusOr<Metainfo> m = ParseMetainfo(EncodeTorrent(t));
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

std::string Extended(uint8_t id, const std::string& payload) {
  std::string out(ext::kHeaderSize, '\0');
  ext::EncodeHeader(id, payload.size(), reinterpret_cast<uint8_t*>(out.data()));
  return out + payload;
}

class ServingTest : public ::testing::Test {
 protected:
  ServingTest() : meta_(MakeMeta(1500)), torrent_(meta_, Config()) {}
  static TorrentConfig Config() {
    TorrentConfig c;
    c.self_id.fill(0xEE);
    c.listen_port = 7777;
    return c;
  }

  void Connect(PeerKey key, bool extensions) {
    torrent_.HandlePeerConnected(key, PeerAddress{0x7F000001, static_cast<uint16_t>(6000 + key)},
                                 false, Instant{1000});
    std::string hs(wire::kHandshakeSize, '\0');
    std::array<uint8_t, 8> reserved{};
    if (extensions) reserved[5] = 0x10;
    PeerId id{};
    id.fill(static_cast<uint8_t>(key));
    wire::EncodeHandshake(meta_.info_hash, id, reserved, reinterpret_cast<uint8_t*>(hs.data()));
    Receive(key, hs);
  }
  void Receive(PeerKey key, const std::string& bytes) {
    torrent_.HandleBytes(key, B(bytes), Instant{1000});
    std::vector<Action> actions;
    torrent_.TakeActions(&actions);
    for (const Action& a : actions) {
      if (a.type == Action::Type::kClose) closed_[a.peer] = a.message;
    }
    for (auto s = torrent_.NextSend(key); !s.empty(); s = torrent_.NextSend(key)) {
      sent_[key].append(reinterpret_cast<const char*>(s.data()), s.size());
      torrent_.HandleSent(key, s.size(), Instant{1000});
    }
  }
  // Extended messages sent to `key` after the handshake: (ext id, payload).
  std::vector<std::pair<uint8_t, std::string>> ExtendedSent(PeerKey key) {
    std::vector<std::pair<uint8_t, std::string>> out;
    const std::string& s = sent_[key];
    size_t off = wire::kHandshakeSize;
    while (off < s.size()) {
      wire::Message m;
      absl::StatusOr<size_t> n = wire::ParseMessage(B(s.substr(off)), 1 << 20, &m);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      if (m.raw_id == 20) {
        out.emplace_back(static_cast<uint8_t>(s[off + 5]), s.substr(off + 6, *n - 6));
      }
      off += *n;
    }
    return out;
  }

  Metainfo meta_;
  Torrent torrent_;
  std::map<PeerKey, std::string> sent_;
  std::map<PeerKey, std::string> closed_;
};

TEST_F(ServingTest, AdvertisesBep10AndMetadataSize) {
  Connect(1, true);
  ASSERT_GE(sent_[1].size(), wire::kHandshakeSize);
  EXPECT_EQ(sent_[1][25] & 0x10, 0x10) << "reserved[5] bit 0x10";
  auto ext = ExtendedSent(1);
  ASSERT_EQ(ext.size(), 1u);
  EXPECT_EQ(ext[0].first, 0);
  absl::StatusOr<ext::Handshake> h = ext::ParseHandshake(B(ext[0].second));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->IdOf("ut_metadata"), 1);
  EXPECT_EQ(h->IdOf("ut_pex"), 2);
  EXPECT_EQ(h->metadata_size, static_cast<int64_t>(meta_.info_bytes.size()));
  EXPECT_EQ(h->listen_port, 7777);
  EXPECT_EQ(h->client, "Torrenty");
}

TEST_F(ServingTest, NoExtensionHandshakeWithoutTheBit) {
  Connect(1, false);
  EXPECT_TRUE(ExtendedSent(1).empty());
  // Extended messages from a peer that did not set the bit are ignored, not answered.
  Receive(1, Extended(1, ext::EncodeMetadataRequest(0)));
  EXPECT_TRUE(ExtendedSent(1).empty());
  EXPECT_FALSE(closed_.contains(1));
}

TEST_F(ServingTest, ServesPiecesUnderThePeersIdAndRejectsOutOfRange) {
  Connect(1, true);
  ext::Handshake theirs;
  theirs.m = {{"ut_metadata", 9}, {"lt_donthave", 7}};
  Receive(1, Extended(0, ext::EncodeHandshake(theirs)));
  Receive(1, Extended(1, ext::EncodeMetadataRequest(1)) +
                 Extended(1, ext::EncodeMetadataRequest(2)) +
                 Extended(42, "garbage under an id we never gave out"));
  auto ext = ExtendedSent(1);
  ASSERT_EQ(ext.size(), 3u);
  EXPECT_EQ(ext[1].first, 9);
  absl::StatusOr<ext::MetadataMessage> data = ext::ParseMetadataMessage(B(ext[1].second));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->type, ext::MetadataType::kData);
  EXPECT_EQ(data->piece, 1u);
  EXPECT_EQ(data->total_size, static_cast<int64_t>(meta_.info_bytes.size()));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data->data.data()), data->data.size()),
            meta_.info_bytes.substr(ext::kMetadataPieceSize));
  absl::StatusOr<ext::MetadataMessage> reject = ext::ParseMetadataMessage(B(ext[2].second));
  ASSERT_TRUE(reject.ok());
  EXPECT_EQ(reject->type, ext::MetadataType::kReject);
  EXPECT_EQ(reject->piece, 2u);
  EXPECT_FALSE(closed_.contains(1));
}

TEST_F(ServingTest, MalformedExtensionMessagesCloseThePeer) {
  Connect(1, true);
  Receive(1, Extended(0, "d1:mi1ee"));
  EXPECT_TRUE(closed_.contains(1));
  Connect(2, true);
  Receive(2, Extended(1, "d8:msg_typei7e5:piecei0ee"));
  EXPECT_TRUE(closed_.contains(2));
}

// The fetcher of a magnet download against a Torrent that has the metainfo, bytes shuttled in
// memory both ways.
TEST_F(ServingTest, MetadataFetchGetsTheInfoDictFromATorrent) {
  MetadataFetchConfig fc;
  fc.info_hash = meta_.info_hash;
  fc.self_id.fill(0x33);
  MetadataFetch fetch(fc);
  const PeerKey key = 5;
  fetch.HandlePeerConnected(key, PeerAddress{0x7F000001, 7777}, Instant{1000});
  torrent_.HandlePeerConnected(key, PeerAddress{0x7F000001, 40000}, false, Instant{1000});
  std::string to_torrent, to_fetch;
  for (int round = 0; round < 50 && !fetch.done(); ++round) {
    std::vector<Action> actions;
    fetch.TakeActions(&actions);
    torrent_.TakeActions(&actions);
    for (auto s = fetch.NextSend(key); !s.empty(); s = fetch.NextSend(key)) {
      to_torrent.append(reinterpret_cast<const char*>(s.data()), s.size());
      fetch.HandleSent(key, s.size(), Instant{1000});
    }
    for (auto s = torrent_.NextSend(key); !s.empty(); s = torrent_.NextSend(key)) {
      to_fetch.append(reinterpret_cast<const char*>(s.data()), s.size());
      torrent_.HandleSent(key, s.size(), Instant{1000});
    }
    to_torrent.erase(0, torrent_.HandleBytes(key, B(to_torrent), Instant{1000}));
    to_fetch.erase(0, fetch.HandleBytes(key, B(to_fetch), Instant{1000}));
  }
  ASSERT_TRUE(fetch.done());
  EXPECT_EQ(fetch.info_bytes(), meta_.info_bytes);
  EXPECT_EQ(Sha1(B(fetch.info_bytes())), meta_.info_hash);
}

}  // namespace
}  // namespace torrenty::engine
