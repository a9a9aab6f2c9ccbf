// BEP 11 ut_pex in engine::Torrent: offered in the extension handshake unless the torrent is
// private (BEP 27), received peers become dial candidates, the connected set is sent to peers that
// offered ut_pex at most once a minute, and a three-client swarm where one client learns another
// only through PEX.
#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/codec/extension.h"
#include "engine/codec/wire.h"
#include "engine/pex/ut_pex.h"
#include "engine/torrent/torrent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using testing::Swarm;

absl::Span<const uint8_t> B(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string Extended(uint8_t id, const std::string& payload) {
  std::string out(ext::kHeaderSize, '\0');
  ext::EncodeHeader(id, payload.size(), reinterpret_cast<uint8_t*>(out.data()));
  return out + payload;
}

constexpr uint8_t kOurPexId = 2;  // engine/torrent/extensions.h
constexpr uint8_t kTheirPexId = 9;

Metainfo MakeMeta(bool is_private) {
  std::mt19937_64 rng(7);
  const std::vector<uint8_t> payload = testing::RandomBytes(rng, 64 * 1024);
  Metainfo m = testing::MakeMetainfo(payload, 16 * 1024);
  m.is_private = is_private;
  return m;
}

// One Torrent with raw peers that dialled it, speaking the wire protocol by hand.
class PexTest : public ::testing::Test {
 protected:
  explicit PexTest(bool is_private = false, bool pex = true)
      : meta_(MakeMeta(is_private)), torrent_(meta_, Config(pex)) {}
  static TorrentConfig Config(bool pex) {
    TorrentConfig c;
    c.self_id.fill(0xEE);
    c.listen_port = 7777;
    c.pex = pex;
    return c;
  }
  static PeerAddress Addr(PeerKey key, uint16_t port) {
    return PeerAddress{0x0A000000u + key, port};
  }

  // An incoming peer that sets the BEP 10 bit and sends an extension handshake offering ut_pex
  // (under kTheirPexId, or not at all) with listen port 6881.
  void Connect(PeerKey key, bool offers_pex = true) {
    torrent_.HandlePeerConnected(key, Addr(key, 50000), false, now_);
    std::string hs(wire::kHandshakeSize, '\0');
    std::array<uint8_t, 8> reserved{};
    reserved[5] = 0x10;
    PeerId id{};
    id.fill(static_cast<uint8_t>(key));
    wire::EncodeHandshake(meta_.info_hash, id, reserved, reinterpret_cast<uint8_t*>(hs.data()));
    ext::Handshake h;
    if (offers_pex) h.m = {{"ut_pex", kTheirPexId}};
    h.listen_port = 6881;
    Receive(key, hs + Extended(0, ext::EncodeHandshake(h)));
  }
  void Drain() {
    std::vector<Action> actions;
    torrent_.TakeActions(&actions);
    for (const Action& a : actions) {
      if (a.type == Action::Type::kClose) closed_[a.peer] = a.message;
      if (a.type == Action::Type::kConnect) dials_.push_back(a.address);
    }
    for (auto& [key, sent] : sent_) {
      for (auto s = torrent_.NextSend(key); !s.empty(); s = torrent_.NextSend(key)) {
        sent.append(reinterpret_cast<const char*>(s.data()), s.size());
        torrent_.HandleSent(key, s.size(), now_);
      }
    }
  }
  void Receive(PeerKey key, const std::string& bytes) {
    sent_[key];
    torrent_.HandleBytes(key, B(bytes), now_);
    Drain();
  }
  // Ticks every second until `ms` have passed, as a driver would.
  void Advance(int64_t ms) {
    for (int64_t end = now_.ms + ms; now_.ms < end;) {
      now_.ms = std::min(end, now_.ms + 1000);
      torrent_.HandleTick(now_);
      Drain();
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
  std::vector<pex::PexMessage> PexSent(PeerKey key) {
    std::vector<pex::PexMessage> out;
    for (const auto& [id, payload] : ExtendedSent(key)) {
      if (id != kTheirPexId) continue;
      absl::StatusOr<pex::PexMessage> m = pex::ParsePex(B(payload));
      EXPECT_TRUE(m.ok()) << m.status();
      if (m.ok()) out.push_back(*m);
    }
    return out;
  }
  uint8_t OfferedPexId(PeerKey key) {
    auto ext = ExtendedSent(key);
    EXPECT_FALSE(ext.empty());
    if (ext.empty() || ext[0].first != 0) return 0;
    absl::StatusOr<ext::Handshake> h = ext::ParseHandshake(B(ext[0].second));
    EXPECT_TRUE(h.ok());
    return h.ok() ? h->IdOf("ut_pex") : 0;
  }
  std::string PexPayload(std::vector<PeerAddress> added) {
    pex::PexMessage m;
    for (const PeerAddress& a : added) m.added.push_back({pex::PexEndpoint::FromV4(a), 0});
    return pex::EncodePex(m);
  }

  Metainfo meta_;
  Torrent torrent_;
  Instant now_{1'000'000};
  std::map<PeerKey, std::string> sent_;
  std::map<PeerKey, std::string> closed_;
  std::vector<PeerAddress> dials_;
};

class PrivatePexTest : public PexTest {
 protected:
  PrivatePexTest() : PexTest(/*is_private=*/true) {}
};
class PexOffTest : public PexTest {
 protected:
  PexOffTest() : PexTest(false, /*pex=*/false) {}
};

TEST_F(PexTest, OffersUtPex) {
  Connect(1);
  EXPECT_EQ(OfferedPexId(1), kOurPexId);
}

TEST_F(PexTest, ReceivedPeersAreDialled) {
  Connect(1);
  const PeerAddress v6 =
      PeerAddress::V6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}, 6885);
  pex::PexMessage m;
  m.added = {{pex::PexEndpoint::FromV4(Addr(20, 6881)), pex::kPexSeed},
             {pex::PexEndpoint::FromV6(v6.ip6, v6.port), 0},
             // Our own listen address on loopback: never dialled.
             {pex::PexEndpoint::FromV4(PeerAddress{0x7F000001, 7777}), 0}};
  Receive(1, Extended(kOurPexId, pex::EncodePex(m)));
  EXPECT_THAT(dials_, ::testing::UnorderedElementsAre(Addr(20, 6881), v6));
  EXPECT_EQ(torrent_.num_candidates(), 2u);
  EXPECT_FALSE(closed_.contains(1));
}

TEST_F(PexTest, MessagesSoonerThanAllowedAreDropped) {
  Connect(1);
  Receive(1, Extended(kOurPexId, PexPayload({Addr(20, 6881)})));
  now_.ms += 1000;
  Receive(1, Extended(kOurPexId, PexPayload({Addr(21, 6881)})));
  EXPECT_EQ(torrent_.num_candidates(), 1u);
  now_.ms += 10'000;
  Receive(1, Extended(kOurPexId, PexPayload({Addr(22, 6881)})));
  EXPECT_EQ(torrent_.num_candidates(), 2u);
}

TEST_F(PexTest, PexDoesNotCutTheBackoffOfAFailedAddress) {
  Connect(1);
  Receive(1, Extended(kOurPexId, PexPayload({Addr(20, 6881)})));
  ASSERT_EQ(dials_.size(), 1u);
  // Two failures: the next try is 20 s away.
  torrent_.HandleConnectFailed(Addr(20, 6881), now_);
  torrent_.HandleConnectFailed(Addr(20, 6881), now_);
  Advance(11'000);  // past the 10 s the peer must wait between ut_pex messages
  Receive(1, Extended(kOurPexId, PexPayload({Addr(20, 6881)})));
  EXPECT_EQ(dials_.size(), 1u);
  Advance(10'000);
  EXPECT_EQ(dials_.size(), 2u);
}

TEST_F(PexTest, MalformedMessageClosesThePeer) {
  Connect(1);
  Receive(1, Extended(kOurPexId, "d5:added5:12345e"));
  EXPECT_TRUE(closed_.contains(1));
  EXPECT_EQ(torrent_.num_candidates(), 0u);
}

TEST_F(PrivatePexTest, NeitherOfferedNorUsed) {
  Connect(1);
  Connect(2);
  EXPECT_EQ(OfferedPexId(1), 0);
  Receive(1, Extended(kOurPexId, PexPayload({Addr(20, 6881)})));
  EXPECT_EQ(torrent_.num_candidates(), 0u);
  EXPECT_TRUE(dials_.empty());
  EXPECT_FALSE(closed_.contains(1));
  Advance(70'000);
  EXPECT_TRUE(PexSent(1).empty());
  EXPECT_TRUE(PexSent(2).empty());
}

TEST_F(PexOffTest, NeitherOfferedNorUsed) {
  Connect(1);
  EXPECT_EQ(OfferedPexId(1), 0);
  Receive(1, Extended(kOurPexId, PexPayload({Addr(20, 6881)})));
  EXPECT_EQ(torrent_.num_candidates(), 0u);
}

TEST_F(PexTest, SendsConnectedListenAddressesOncePerMinute) {
  Connect(1);
  Connect(2);
  Connect(3, /*offers_pex=*/false);
  // An incoming peer that never told its listen port is not shared.
  torrent_.HandlePeerConnected(4, Addr(4, 50000), false, now_);
  Advance(1000);
  std::vector<pex::PexMessage> to1 = PexSent(1);
  ASSERT_EQ(to1.size(), 1u);
  std::vector<pex::PexEndpoint> added;
  for (const pex::PexPeer& p : to1[0].added) added.push_back(p.endpoint);
  std::sort(added.begin(), added.end(), [](const auto& a, const auto& b) { return a.ip < b.ip; });
  EXPECT_EQ(added, (std::vector<pex::PexEndpoint>{pex::PexEndpoint::FromV4(Addr(2, 6881)),
                                                  pex::PexEndpoint::FromV4(Addr(3, 6881))}));
  EXPECT_EQ(PexSent(2).size(), 1u);
  EXPECT_TRUE(ExtendedSent(3).size() == 1u) << "only the extension handshake to a non-PEX peer";
  // The deadline is in NextTimeout: nothing before the minute is up, however things change.
  EXPECT_LE(torrent_.NextTimeout().ms, now_.ms + 60'000 + 1);
  Connect(5);
  Advance(30'000);
  EXPECT_EQ(PexSent(1).size(), 1u);
  Advance(31'000);
  to1 = PexSent(1);
  ASSERT_EQ(to1.size(), 2u);
  ASSERT_EQ(to1[1].added.size(), 1u);
  EXPECT_EQ(to1[1].added[0].endpoint, pex::PexEndpoint::FromV4(Addr(5, 6881)));
  // A peer that leaves is sent as dropped.
  torrent_.HandlePeerClosed(2, now_);
  Advance(61'000);
  to1 = PexSent(1);
  ASSERT_EQ(to1.size(), 3u);
  EXPECT_EQ(to1[2].dropped,
            (std::vector<pex::PexEndpoint>{pex::PexEndpoint::FromV4(Addr(2, 6881))}));
  // Nothing changes: no message, and no PEX deadline keeps the timer busy.
  Advance(120'000);
  EXPECT_EQ(PexSent(1).size(), 3u);
  EXPECT_GT(torrent_.NextTimeout().ms, now_.ms);
}

// Peers connected on other shards (relayed by io) are listed next to this engine's own, and a
// change to them alone makes a peer that was up to date due again.
TEST_F(PexTest, PeersOfOtherShardsAreListedToo) {
  Connect(1);
  Connect(2);
  const pex::PexPeer remote{pex::PexEndpoint::FromV4(PeerAddress{0x0B000001u, 7000}),
                            pex::kPexSeed};
  torrent_.SetOtherShardsPexPeers({remote});
  Advance(1000);
  std::vector<pex::PexMessage> to1 = PexSent(1);
  ASSERT_EQ(to1.size(), 1u);
  EXPECT_EQ(to1[0].added.size(), 2u);
  EXPECT_NE(std::find(to1[0].added.begin(), to1[0].added.end(), remote), to1[0].added.end());
  // The local list is what io relays: this engine's peers only, never the other shards'.
  std::vector<pex::PexPeer> local = torrent_.LocalPexPeers();
  EXPECT_EQ(local.size(), 2u);
  EXPECT_EQ(std::find(local.begin(), local.end(), remote), local.end());
  // Nothing changes for a minute; then only the other shards' set changes.
  const uint64_t generation = torrent_.pex_generation();
  Advance(61'000);
  EXPECT_EQ(PexSent(1).size(), 1u);
  const pex::PexPeer second{pex::PexEndpoint::FromV4(PeerAddress{0x0B000002u, 7000}), 0};
  torrent_.SetOtherShardsPexPeers({remote, second});
  EXPECT_EQ(torrent_.pex_generation(), generation) << "would echo between shards";
  EXPECT_LE(torrent_.NextTimeout().ms, now_.ms + 1);
  Advance(1000);
  to1 = PexSent(1);
  ASSERT_EQ(to1.size(), 2u);
  ASSERT_EQ(to1[1].added.size(), 1u);
  EXPECT_EQ(to1[1].added[0], second);
}

TEST_F(PrivatePexTest, OtherShardsPeersAreNotShared) {
  Connect(1);
  torrent_.SetOtherShardsPexPeers({{pex::PexEndpoint::FromV4(PeerAddress{0x0B000001u, 7000}), 0}});
  Advance(61'000);
  EXPECT_TRUE(PexSent(1).empty());
  EXPECT_TRUE(torrent_.LocalPexPeers().empty());
}

// A seeds; B and C dial A. B learns C only through A's ut_pex and connects to it. Ticks only on
// NextTimeout, so the PEX deadline must be part of it.
void RunThreeClients(bool is_private, bool* b_dialled_c) {
  std::mt19937_64 rng(3);
  const std::vector<uint8_t> payload = testing::RandomBytes(rng, 256 * 1024);
  Metainfo meta = testing::MakeMetainfo(payload, 16 * 1024);
  meta.is_private = is_private;
  Swarm sim(meta, payload, {.seed = 3, .tick_on_deadline = true});
  const int a = sim.AddClient(/*seed=*/true);
  const int b = sim.AddClient(/*seed=*/false);
  const int c = sim.AddClient(/*seed=*/false);
  sim.Introduce(b, a);
  sim.Introduce(c, a);
  const PeerAddress c_addr = sim.client(c).address;
  const auto dialled = [&] {
    for (const auto& [t, addr] : sim.client(b).dials)
      if (addr == c_addr) return true;
    return false;
  };
  sim.RunOnDeadlines(dialled, 5 * 60'000);
  *b_dialled_c = dialled();
  if (*b_dialled_c) {
    EXPECT_TRUE(sim.RunOnDeadlines([&] { return !sim.PipesBetween(b, c).empty(); }, 10'000));
    ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.AllComplete({b, c}); }, 10 * 60'000));
  }
}

TEST(PexSwarmTest, ClientLearnsAPeerThroughPex) {
  bool dialled = false;
  RunThreeClients(/*is_private=*/false, &dialled);
  EXPECT_TRUE(dialled);
}

TEST(PexSwarmTest, PrivateTorrentLearnsNothingThroughPex) {
  bool dialled = false;
  RunThreeClients(/*is_private=*/true, &dialled);
  EXPECT_FALSE(dialled);
}

}  // namespace
}  // namespace torrenty::engine
