// Tests for the metadata fetch of a magnet download (engine/torrent/metadata_fetch.h), with
// scripted peers in memory: honest, rejecting, silent, and lying about bytes or size.
#include "engine/torrent/metadata_fetch.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/sha1.h"
#include "engine/codec/extension.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/torrent_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

absl::Span<const uint8_t> B(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// A real info dict of about `pieces` * 20 bytes (so several 16 KiB metadata pieces).
std::string MakeInfo(int pieces) {
  NewTorrent t;
  t.name = "data.bin";
  t.piece_length = 16384;
  t.files = {FileEntry{{}, int64_t{pieces} * 16384}};
  for (int i = 0; i < pieces; ++i) {
    Sha1Digest d{};
    d[0] = static_cast<uint8_t>(i);
    d[1] = static_cast<uint8_t>(i >> 8);
    t.piece_hashes.push_back(d);
  }
  absl::StatusOr<Metainfo> m = ParseMetainfo(EncodeTorrent(t));
  EXPECT_TRUE(m.ok()) << m.status();
  return m->info_bytes;
}

enum class Behaviour { kHonest, kReject, kSilent, kWrongBytes, kWrongSize, kNoExtensions };

struct FakePeer {
  Behaviour behaviour = Behaviour::kHonest;
  PeerAddress address;
  PeerKey key = 0;
  std::string info;
  int64_t advertised_size = 0;
  uint8_t their_id = 0;  // the fetcher's id for ut_metadata, from its handshake
  std::string inbox;     // bytes the fetcher sent, not yet parsed
  bool handshake_read = false;
  int requests = 0;
  bool closed = false;
};

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    info_ = MakeInfo(1500);  // ~30 KB: two metadata pieces
    config_.info_hash = Sha1(B(info_));
    config_.self_id[0] = 'T';
    fetch_ = std::make_unique<MetadataFetch>(config_);
  }

  FakePeer& AddPeer(Behaviour b, uint32_t ip_last) { return AddPeerWithSize(b, ip_last, 0); }

  FakePeer& AddPeerWithSize(Behaviour b, uint32_t ip_last, int64_t size) {
    auto p = std::make_unique<FakePeer>();
    p->behaviour = b;
    p->address = PeerAddress{0x0a000000u | ip_last, 6881};
    p->info = info_;
    p->advertised_size = size > 0 ? size : static_cast<int64_t>(info_.size());
    p->key = next_key_++;
    FakePeer& ref = *p;
    peers_[ref.key] = std::move(p);
    fetch_->HandlePeerConnected(ref.key, ref.address, now_);
    std::string hs(wire::kHandshakeSize, '\0');
    std::array<uint8_t, 8> reserved{};
    if (b != Behaviour::kNoExtensions) reserved[5] = 0x10;
    PeerId id{};
    id[0] = static_cast<uint8_t>(ip_last);
    wire::EncodeHandshake(config_.info_hash, id, reserved, reinterpret_cast<uint8_t*>(hs.data()));
    ext::Handshake eh;
    eh.m = {{"ut_metadata", 3}};
    eh.metadata_size = ref.advertised_size;
    std::string bytes = hs + Extended(0, ext::EncodeHandshake(eh));
    Feed(ref, bytes);
    return ref;
  }

  static std::string Extended(uint8_t id, const std::string& payload) {
    std::string out(ext::kHeaderSize, '\0');
    ext::EncodeHeader(id, payload.size(), reinterpret_cast<uint8_t*>(out.data()));
    return out + payload;
  }

  void Feed(FakePeer& p, const std::string& bytes) {
    fetch_->HandleBytes(p.key, B(bytes), now_);
    Pump();
  }

  // Runs actions and lets every fake peer answer what it was sent, until quiet.
  void Pump() {
    for (int round = 0; round < 100; ++round) {
      std::vector<Action> actions;
      fetch_->TakeActions(&actions);
      std::vector<FakePeer*> to_answer;
      for (const Action& a : actions) {
        if (a.type == Action::Type::kLog) logs_.push_back(a.message);
        if (a.type == Action::Type::kClose) {
          if (peers_.contains(a.peer)) peers_[a.peer]->closed = true;
          closes_.push_back(a.message);
        }
        if (a.type == Action::Type::kFlush && peers_.contains(a.peer)) {
          FakePeer& p = *peers_[a.peer];
          for (absl::Span<const uint8_t> s = fetch_->NextSend(p.key); !s.empty();
               s = fetch_->NextSend(p.key)) {
            p.inbox.append(reinterpret_cast<const char*>(s.data()), s.size());
            fetch_->HandleSent(p.key, s.size(), now_);
          }
          to_answer.push_back(&p);
        }
      }
      if (to_answer.empty()) return;
      for (FakePeer* p : to_answer) {
        if (!p->closed) Answer(*p);
      }
    }
  }

  void Answer(FakePeer& p) {
    std::string reply;
    if (!p.handshake_read) {
      if (p.inbox.size() < wire::kHandshakeSize) return;
      EXPECT_EQ(p.inbox[25] & 0x10, 0x10) << "extension bit";
      p.inbox.erase(0, wire::kHandshakeSize);
      p.handshake_read = true;
    }
    while (p.inbox.size() >= 4) {
      wire::Message msg;
      absl::StatusOr<size_t> n = wire::ParseMessage(B(p.inbox), 1 << 20, &msg);
      ASSERT_TRUE(n.ok());
      if (*n == 0) break;
      const std::string body = p.inbox.substr(5, *n - 5);  // after <len><20>
      p.inbox.erase(0, *n);
      ASSERT_EQ(msg.raw_id, 20);
      if (body[0] == 0) {
        absl::StatusOr<ext::Handshake> h = ext::ParseHandshake(B(body.substr(1)));
        ASSERT_TRUE(h.ok());
        p.their_id = h->IdOf("ut_metadata");
        continue;
      }
      ASSERT_EQ(body[0], 3) << "sent under the id the peer gave";
      absl::StatusOr<ext::MetadataMessage> m = ext::ParseMetadataMessage(B(body.substr(1)));
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(m->type, ext::MetadataType::kRequest);
      ++p.requests;
      const uint32_t piece = m->piece;
      switch (p.behaviour) {
        case Behaviour::kReject:
          reply += Extended(p.their_id, ext::EncodeMetadataReject(piece));
          break;
        case Behaviour::kSilent:
        case Behaviour::kNoExtensions:
          break;
        case Behaviour::kHonest:
        case Behaviour::kWrongBytes:
        case Behaviour::kWrongSize: {
          const int64_t total = static_cast<int64_t>(p.info.size());
          std::string data =
              p.info.substr(piece * ext::kMetadataPieceSize, ext::kMetadataPieceSize);
          if (p.behaviour == Behaviour::kWrongBytes) data[0] ^= 1;
          if (p.behaviour == Behaviour::kWrongSize) {
            reply += Extended(p.their_id, ext::EncodeMetadataDataHeader(piece, total + 100) + data +
                                              std::string(piece == 1 ? 100 : 0, 'x'));
          } else {
            reply += Extended(p.their_id, ext::EncodeMetadataDataHeader(piece, total) + data);
          }
          break;
        }
      }
    }
    if (!reply.empty()) fetch_->HandleBytes(p.key, B(reply), now_);
  }

  void Advance(int64_t ms) {
    now_.ms += ms;
    fetch_->HandleTick(now_);
    Pump();
  }

  bool Logged(const std::string& text) const {
    for (const std::string& l : logs_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

  MetadataFetchConfig config_;
  std::string info_;
  std::unique_ptr<MetadataFetch> fetch_;
  std::map<PeerKey, std::unique_ptr<FakePeer>> peers_;
  PeerKey next_key_ = 1;
  Instant now_{1000};
  std::vector<std::string> logs_;
  std::vector<std::string> closes_;
};

TEST_F(FetchTest, FetchesAndVerifiesFromOneHonestPeer) {
  ASSERT_EQ(ext::MetadataPieceCount(static_cast<int64_t>(info_.size())), 2u);
  AddPeer(Behaviour::kHonest, 1);
  ASSERT_TRUE(fetch_->done());
  EXPECT_EQ(fetch_->info_bytes(), info_);
  EXPECT_TRUE(Logged("SHA-1 matches")) << ::testing::PrintToString(logs_);
  absl::StatusOr<Metainfo> m = ParseInfoDict(fetch_->info_bytes());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hash, config_.info_hash);
  EXPECT_EQ(m->name, "data.bin");
  EXPECT_EQ(fetch_->num_peers(), 0u) << "peers are closed once the metadata is in";
}

TEST_F(FetchTest, RejectedPiecesAreFetchedFromAnotherPeer) {
  FakePeer& r = AddPeer(Behaviour::kReject, 1);
  EXPECT_FALSE(fetch_->done());
  EXPECT_GT(r.requests, 0);
  AddPeer(Behaviour::kHonest, 2);
  EXPECT_TRUE(fetch_->done());
  EXPECT_EQ(fetch_->info_bytes(), info_);
}

TEST_F(FetchTest, UnansweredRequestsTimeOutAndMoveOn) {
  FakePeer& s = AddPeer(Behaviour::kSilent, 1);
  EXPECT_EQ(s.requests, 2);
  FakePeer& h = AddPeer(Behaviour::kHonest, 2);
  EXPECT_EQ(h.requests, 0) << "both pieces are held by the silent peer";
  EXPECT_FALSE(fetch_->done());
  EXPECT_LE(fetch_->NextTimeout().ms, now_.ms + config_.request_timeout_ms);
  Advance(config_.request_timeout_ms);
  EXPECT_TRUE(fetch_->done());
}

TEST_F(FetchTest, PeerSendingWrongBytesIsDroppedAndBanned) {
  FakePeer& liar = AddPeer(Behaviour::kWrongBytes, 1);
  EXPECT_FALSE(fetch_->done());
  EXPECT_TRUE(liar.closed);
  EXPECT_TRUE(fetch_->IsBanned(liar.address));
  EXPECT_TRUE(
      Logged("peer 10.0.0.1:6881: sent metadata that does not hash to the info-hash; "
             "dropped"))
      << ::testing::PrintToString(logs_);
  AddPeer(Behaviour::kHonest, 2);
  EXPECT_TRUE(fetch_->done());
  EXPECT_EQ(fetch_->info_bytes(), info_);
}

TEST_F(FetchTest, PeerLyingAboutSizeIsDropped) {
  FakePeer& liar = AddPeer(Behaviour::kWrongSize, 1);
  EXPECT_TRUE(liar.closed);
  EXPECT_TRUE(Logged("lies about the metadata size")) << ::testing::PrintToString(logs_);
  AddPeer(Behaviour::kHonest, 2);
  EXPECT_TRUE(fetch_->done());
}

TEST_F(FetchTest, MixedSourcesFailOnceThenTheLiarIsFound) {
  // Both peers connected before any request goes out, so each sends one of the two pieces.
  config_.requests_per_peer_max = 1;
  fetch_ = std::make_unique<MetadataFetch>(config_);
  FakePeer& liar = AddPeer(Behaviour::kSilent, 1);
  liar.behaviour = Behaviour::kWrongBytes;
  AddPeer(Behaviour::kHonest, 2);
  // The honest peer answered its piece; the liar's is due: time it out? No: answer it now.
  Advance(0);
  // The liar still holds its request; have it answer by feeding an empty flush.
  liar.inbox.clear();
  const std::string data = info_.substr(0, ext::kMetadataPieceSize);
  std::string bad = data;
  bad[0] ^= 1;
  fetch_->HandleBytes(
      liar.key, B(Extended(liar.their_id, ext::EncodeMetadataDataHeader(0, info_.size()) + bad)),
      now_);
  Pump();
  EXPECT_TRUE(Logged("from 2 peers does not hash")) << ::testing::PrintToString(logs_);
  // From one peer at a time now: whichever is chosen, the liar is named by the next failure.
  for (int i = 0; i < 5 && !fetch_->done(); ++i) Advance(config_.request_timeout_ms);
  EXPECT_TRUE(fetch_->done()) << ::testing::PrintToString(logs_);
  EXPECT_EQ(fetch_->info_bytes(), info_);
}

TEST_F(FetchTest, SilentPeerWithAnotherSizeDoesNotBlockTheHonestOnes) {
  // Its size is chosen (first to answer), it never sends a byte, and it stays connected: after
  // a few unanswered requests it is closed, the working size goes with it, and the honest
  // peer's size is used.
  FakePeer& s = AddPeerWithSize(Behaviour::kSilent, 1, static_cast<int64_t>(info_.size()) + 5000);
  FakePeer& h = AddPeer(Behaviour::kHonest, 2);
  EXPECT_EQ(h.requests, 0);
  for (int i = 0; i < 20 && !fetch_->done(); ++i) Advance(config_.request_timeout_ms);
  EXPECT_TRUE(s.closed);
  EXPECT_TRUE(fetch_->done());
  EXPECT_EQ(fetch_->info_bytes(), info_);
}

TEST_F(FetchTest, PeerWithoutExtensionsIsClosed) {
  FakePeer& p = AddPeer(Behaviour::kNoExtensions, 1);
  EXPECT_TRUE(p.closed);
  EXPECT_THAT(closes_, ::testing::Contains(::testing::HasSubstr("BEP 10")));
}

TEST_F(FetchTest, RequestsInFlightAreBounded) {
  info_ = MakeInfo(20000);  // ~400 KB: 25 pieces
  config_.info_hash = Sha1(B(info_));
  config_.requests_max = 3;
  config_.requests_per_peer_max = 2;
  fetch_ = std::make_unique<MetadataFetch>(config_);
  FakePeer& a = AddPeer(Behaviour::kSilent, 1);
  FakePeer& b = AddPeer(Behaviour::kSilent, 2);
  FakePeer& c = AddPeer(Behaviour::kSilent, 3);
  EXPECT_EQ(a.requests + b.requests + c.requests, 3);
  EXPECT_LE(a.requests, 2);
  for (auto& [key, p] : peers_) p->behaviour = Behaviour::kHonest;
  for (int i = 0; i < 20 && !fetch_->done(); ++i) Advance(config_.request_timeout_ms);
  EXPECT_TRUE(fetch_->done());
  EXPECT_EQ(fetch_->info_bytes(), info_);
}

TEST_F(FetchTest, DialsCandidatesAndBacksOff) {
  const PeerAddress a{0x0a000009, 1234};
  fetch_->AddPeerCandidates({a, a}, now_);
  std::vector<Action> actions;
  fetch_->TakeActions(&actions);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].type, Action::Type::kConnect);
  fetch_->HandleConnectFailed(a, now_);
  EXPECT_EQ(fetch_->NextTimeout().ms, now_.ms + config_.connect_retry_base_ms);
  now_.ms += config_.connect_retry_base_ms;
  fetch_->HandleTick(now_);
  fetch_->TakeActions(&actions);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].type, Action::Type::kConnect);
}

TEST(TorrentFileTest, MakeTorrentFileParsesBack) {
  const std::string info = MakeInfo(3);
  const std::string file = MakeTorrentFile(info, {"http://a/announce", "udp://b:1"});
  absl::StatusOr<Metainfo> m = ParseMetainfo(file);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_bytes, info);
  ASSERT_EQ(m->trackers.size(), 2u);
  EXPECT_EQ(m->trackers[0][0], "http://a/announce");
}

}  // namespace
}  // namespace torrenty::engine
