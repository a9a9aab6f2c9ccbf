// BEP 32 in the DHT engine: "nodes6", "want" and 18-byte values in the KRPC codec, BEP 42 ids
// for IPv6 addresses, and a node keeping IPv4 and IPv6 nodes in separate tables: answers follow
// "want" (else the query's family), values follow the query's family, dual-stack nodes
// bootstrap their IPv6 table through IPv4 answers, and lookups and announces run in both DHTs.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/dht/dht_node.h"
#include "engine/dht/krpc.h"
#include "engine/dht/node_id.h"
#include "gtest/gtest.h"

namespace torrenty::engine::dht {
namespace {

NodeId IdOf(uint8_t first, uint8_t last = 0) {
  NodeId id{};
  id[0] = first;
  id[19] = last;
  return id;
}

PeerAddress Addr4(uint32_t n, uint16_t port = 6881) { return PeerAddress{0x0A000000u + n, port}; }

// fd00::n, a unique local address (exempt from BEP 42 like 10/8).
PeerAddress Addr6(uint32_t n, uint16_t port = 6881) {
  std::array<uint8_t, 16> b{};
  b[0] = 0xFD;
  b[12] = static_cast<uint8_t>(n >> 24);
  b[13] = static_cast<uint8_t>(n >> 16);
  b[14] = static_cast<uint8_t>(n >> 8);
  b[15] = static_cast<uint8_t>(n);
  return PeerAddress::V6(b, port);
}

PeerAddress Ip6(std::array<uint8_t, 16> b, uint16_t port = 6881) {
  return PeerAddress::V6(b, port);
}

// ---------------------------------------------------------------------------------------------
// Codec

TEST(Krpc6, WantRoundTrips) {
  const NodeId self = IdOf(1), target = IdOf(2);
  std::string out;
  EncodeFindNode("aa", self, target, &out, kWantN4 | kWantN6);
  EXPECT_NE(out.find("4:wantl2:n42:n6e"), std::string::npos) << out;
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->want, kWantN4 | kWantN6);
  EncodeGetPeers("bb", self, target, &out, kWantN6);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->want, kWantN6);
  EncodeGetPeers("cc", self, target, &out);
  EXPECT_EQ(out.find("want"), std::string::npos);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->want, 0);
  // Unknown flags and non-strings in "want" are ignored.
  m = DecodeMessage("d1:ad2:id20:" + std::string(20, 'a') + "6:target20:" + std::string(20, 'b') +
                    "4:wantl2:n5i6e2:n6ee1:q9:find_node1:t2:xx1:y1:qe");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->want, kWantN6);
}

TEST(Krpc6, ResponseSplitsNodesByFamilyAndCarriesIpv6Values) {
  const std::vector<NodeInfo> nodes = {
      {IdOf(1), Addr4(1)}, {IdOf(2), Addr6(2, 7000)}, {IdOf(3), Addr6(3)}};
  const std::vector<PeerAddress> values = {Addr4(5, 1000), Addr6(6, 2000)};
  std::string out;
  EncodeResponse("xy", IdOf(9), nodes, "tok", values, Addr6(7, 99), &out);
  EXPECT_NE(out.find("6:nodes676:"), std::string::npos);
  EXPECT_NE(out.find("5:nodes26:"), std::string::npos);
  EXPECT_NE(out.find("2:ip18:"), std::string::npos);
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->nodes, (std::vector<NodeInfo>{nodes[0]}));
  EXPECT_EQ(m->nodes6, (std::vector<NodeInfo>{nodes[1], nodes[2]}));
  EXPECT_EQ(m->values, values);
  ASSERT_TRUE(m->has_ip);
  EXPECT_EQ(m->ip, Addr6(7, 99));
}

TEST(Krpc6, RejectsOrDropsBadIpv6Entries) {
  const std::string head = "d1:rd2:id20:" + std::string(20, 'a');
  const std::string tail = "e1:t2:xx1:y1:re";
  // Not a whole number of 38-byte entries.
  EXPECT_FALSE(DecodeMessage(head + "6:nodes637:" + std::string(37, 'x') + tail).ok());
  // Unspecified, multicast and IPv4-mapped addresses, and port 0, are nobody's node.
  std::string bad6;
  const auto entry = [&](std::array<uint8_t, 16> ip, uint16_t port) {
    bad6 += std::string(20, 'n');
    bad6.append(reinterpret_cast<const char*>(ip.data()), 16);
    bad6.push_back(static_cast<char>(port >> 8));
    bad6.push_back(static_cast<char>(port));
  };
  entry({}, 6881);
  entry({0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 6881);
  entry({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 0, 0, 1}, 6881);
  entry({0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0);
  entry({0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 6881);
  absl::StatusOr<Message> m =
      DecodeMessage(head + "6:nodes6" + std::to_string(bad6.size()) + ":" + bad6 + tail);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->nodes6.size(), 1u);
  EXPECT_EQ(m->nodes6[0].addr, Addr6(2));
  // IPv6 values: 18 bytes; multicast dropped; other lengths skipped.
  std::string v1(16, '\0'), v2(16, '\0');
  v1[0] = '\xFD';
  v1[15] = 1;
  v2[0] = '\xFF';
  m = DecodeMessage(head + "6:valuesl18:" + v1 + "\x1A\xE1" + "18:" + v2 + "\x1A\xE1" +
                    "7:abcdefge" + tail);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->values, (std::vector<PeerAddress>{Addr6(1, 0x1AE1)}));
}

// ---------------------------------------------------------------------------------------------
// BEP 42 for IPv6

TEST(NodeId6, Bep42IdsForIpv6TakeTheMaskedFirst64Bits) {
  const PeerAddress pub =
      Ip6({0x20, 0x01, 0x04, 0x70, 0x1f, 0x0b, 0x16, 0xee, 1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_TRUE(IsPublic(pub));
  for (uint8_t r = 0; r < 8; ++r) {
    const NodeId id = Bep42Id(pub, r, IdOf(0x55, 0x55));
    EXPECT_EQ(id[19], r);
    EXPECT_TRUE(Bep42Valid(pub, id));
    // The interface half of the address is not part of it ...
    PeerAddress other_host = pub;
    other_host.ip6[15] ^= 0xFF;
    EXPECT_TRUE(Bep42Valid(other_host, id));
    // ... nor are the bits the mask clears (the top 7 of the first byte) ...
    PeerAddress masked_out = pub;
    masked_out.ip6[0] ^= 0x04;
    EXPECT_TRUE(Bep42Valid(masked_out, id));
    // ... but the /64 is.
    PeerAddress other_net = pub;
    other_net.ip6[7] ^= 0x01;
    EXPECT_FALSE(Bep42Valid(other_net, id));
    NodeId wrong = id;
    wrong[1] ^= 0x01;
    EXPECT_FALSE(Bep42Valid(pub, wrong));
  }
  // The CRC is over the 8 masked bytes with r in the top 3 bits of the first.
  const uint8_t masked[8] = {(0x20 & 0x01) | (5 << 5),
                             0x01 & 0x03,
                             0x04 & 0x07,
                             0x70 & 0x0f,
                             0x1f & 0x1f,
                             0x0b & 0x3f,
                             0x16 & 0x7f,
                             0xee};
  const uint32_t crc = Crc32c(masked, 8);
  const NodeId id = Bep42Id(pub, 5, NodeId{});
  EXPECT_EQ(id[0], static_cast<uint8_t>(crc >> 24));
  EXPECT_EQ(id[1], static_cast<uint8_t>(crc >> 16));
  EXPECT_EQ(id[2] & 0xF8, static_cast<uint8_t>((crc >> 8) & 0xF8));
  // Loopback, link-local, unique local and documentation addresses are exempt.
  for (const PeerAddress& a :
       {Ip6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}),
        Ip6({0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), Addr6(1),
        Ip6({0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})}) {
    EXPECT_FALSE(IsPublic(a)) << a.ToString();
    EXPECT_TRUE(Bep42Valid(a, IdOf(0x12))) << a.ToString();
  }
}

// ---------------------------------------------------------------------------------------------
// A node answering over both families

struct Answer {
  std::vector<NodeInfo> nodes, nodes6;
  std::vector<PeerAddress> values;
  std::string token;
};

class SingleNode : public ::testing::Test {
 protected:
  SingleNode() : n_(IdOf(0x80), NodeConfig{}, 3, Instant{0}) {}

  // A node at `addr` answers our ping, so it joins the table of its family.
  void Join(const NodeId& id, const PeerAddress& addr) {
    n_.AddSavedNode(NodeInfo{id, addr}, now_);
    n_.TakeOutgoing(&out_);
    ASSERT_FALSE(out_.empty());
    absl::StatusOr<Message> q = DecodeMessage(out_.back().bytes);
    ASSERT_TRUE(q.ok());
    std::string resp;
    EncodeResponse(q->transaction, id, {}, "", {}, addr, &resp);
    n_.HandleDatagram(addr, resp, now_);
    n_.TakeOutgoing(&out_);
  }
  Answer Ask(const PeerAddress& from, const std::string& query) {
    n_.HandleDatagram(from, query, now_);
    n_.TakeOutgoing(&out_);
    Answer a;
    for (const Outgoing& o : out_) {
      if (!(o.to == from)) continue;
      absl::StatusOr<Message> m = DecodeMessage(o.bytes);
      if (!m.ok() || m->kind != Message::Kind::kResponse) continue;
      a.nodes = m->nodes;
      a.nodes6 = m->nodes6;
      a.values = m->values;
      a.token = m->token;
    }
    return a;
  }
  std::string GetPeers(const InfoHash& ih, uint8_t want) {
    std::string q;
    EncodeGetPeers("gp", IdOf(0x11), ih, &q, want);
    return q;
  }

  Node n_;
  Instant now_{1000};
  std::vector<Outgoing> out_;
};

TEST_F(SingleNode, KeepsFamiliesInSeparateTablesAndAnswersWhatWantAsks) {
  for (uint32_t i = 1; i <= 3; ++i) Join(IdOf(static_cast<uint8_t>(i)), Addr4(i));
  for (uint32_t i = 1; i <= 2; ++i) Join(IdOf(static_cast<uint8_t>(0x40 + i)), Addr6(i));
  EXPECT_EQ(n_.table().size(), 3u);
  EXPECT_EQ(n_.table6().size(), 2u);
  EXPECT_EQ(n_.nodes(), 5u);

  std::string q;
  EncodeFindNode("fn", IdOf(0x11), IdOf(0x01), &q);
  Answer a = Ask(Addr4(50), q);  // no want: the query's family
  EXPECT_EQ(a.nodes.size(), 3u);
  EXPECT_TRUE(a.nodes6.empty());
  a = Ask(Addr6(50), q);
  EXPECT_TRUE(a.nodes.empty());
  EXPECT_EQ(a.nodes6.size(), 2u);
  EncodeFindNode("fn", IdOf(0x11), IdOf(0x01), &q, kWantN6);
  a = Ask(Addr4(51), q);
  EXPECT_TRUE(a.nodes.empty());
  EXPECT_EQ(a.nodes6.size(), 2u);
  a = Ask(Addr6(51), GetPeers(IdOf(0x01), kWantN4 | kWantN6));
  EXPECT_EQ(a.nodes.size(), 3u);
  EXPECT_EQ(a.nodes6.size(), 2u);
}

TEST_F(SingleNode, StoresIpv6AnnouncesAndReturnsPeersOfTheQuerysFamily) {
  const InfoHash ih = IdOf(0x33);
  // Tokens are per address: one given over IPv4 is no good over IPv6.
  const Answer t4 = Ask(Addr4(60), GetPeers(ih, 0));
  const Answer t6 = Ask(Addr6(60), GetPeers(ih, 0));
  ASSERT_FALSE(t6.token.empty());
  EXPECT_NE(t4.token, t6.token);
  EXPECT_TRUE(n_.TokenValid(Addr6(60), t6.token));
  EXPECT_FALSE(n_.TokenValid(Addr6(61), t6.token));
  EXPECT_FALSE(n_.TokenValid(Addr4(60), t6.token));
  std::string q;
  EncodeAnnouncePeer("a6", IdOf(0x12), ih, 5000, t6.token, &q);
  n_.HandleDatagram(Addr6(60), q, now_);
  EncodeAnnouncePeer("a4", IdOf(0x13), ih, 4000, t4.token, &q);
  n_.HandleDatagram(Addr4(60), q, now_);
  EncodeAnnouncePeer("ax", IdOf(0x14), ih, 4000, t4.token, &q);
  n_.HandleDatagram(Addr6(61), q, now_);  // a token for another address
  EXPECT_EQ(n_.stored_peers(), 2u);
  EXPECT_EQ(Ask(Addr6(70), GetPeers(ih, 0)).values, (std::vector<PeerAddress>{Addr6(60, 5000)}));
  EXPECT_EQ(Ask(Addr4(70), GetPeers(ih, kWantN4 | kWantN6)).values,
            (std::vector<PeerAddress>{Addr4(60, 4000)}));
}

TEST_F(SingleNode, Bep42KeepsMismatchedPublicIpv6NodesOut) {
  const PeerAddress pub = Ip6({0x20, 0x01, 0x04, 0x70, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9});
  Join(IdOf(0x77), pub);
  EXPECT_EQ(n_.table6().size(), 0u);
  Join(Bep42Id(pub, 2, IdOf(0x77)), pub);
  EXPECT_EQ(n_.table6().size(), 1u);
  EXPECT_EQ(n_.table().size(), 0u);
}

TEST(DhtNode6, Ipv4OnlyNodeNeverSendsToIpv6) {
  NodeConfig c;
  c.ipv6 = false;
  Node n(IdOf(1), c, 1, Instant{0});
  n.AddBootstrap(Addr6(1), Instant{0});
  n.AddSavedNode(NodeInfo{IdOf(2), Addr6(2)}, Instant{0});
  std::vector<Outgoing> out;
  n.TakeOutgoing(&out);
  EXPECT_TRUE(out.empty());
  // Queries it sends ask for its own family only.
  n.AddBootstrap(Addr4(1), Instant{0});
  n.TakeOutgoing(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes.find("want"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Nodes on an in-memory network with both families

class Network {
 public:
  // A node at 10.0.0.n and/or fd00::n (answering from the address of the family it is asked on).
  Node& Add(const NodeId& id, uint32_t n, bool v4, bool v6) {
    NodeConfig c;
    c.ipv6 = v6;
    auto node = std::make_shared<Node>(id, c, n, now_);
    Member m{node, v4 ? Addr4(n) : PeerAddress{}, v6 ? Addr6(n) : PeerAddress{}, v4, v6, {}};
    members_.push_back(m);
    if (v4) by_addr_[Key(Addr4(n))] = members_.size() - 1;
    if (v6) by_addr_[Key(Addr6(n))] = members_.size() - 1;
    return *node;
  }
  Node& at(uint32_t n) {
    auto it = by_addr_.find(Key(Addr4(n)));
    if (it == by_addr_.end()) it = by_addr_.find(Key(Addr6(n)));
    return *members_[it->second].node;
  }
  std::vector<Event>& events(uint32_t n) {
    auto it = by_addr_.find(Key(Addr4(n)));
    if (it == by_addr_.end()) it = by_addr_.find(Key(Addr6(n)));
    return members_[it->second].events;
  }
  void Run(int64_t ms) {
    const Instant end{now_.ms + ms};
    std::vector<Outgoing> out;
    while (now_ < end) {
      for (int round = 0; round < 100; ++round) {
        bool any = false;
        for (Member& m : members_) {
          m.node->TakeOutgoing(&out);
          for (Outgoing& o : out) {
            any = true;
            // A node without the family has no route there.
            if (o.to.v6 ? !m.v6 : !m.v4) continue;
            auto it = by_addr_.find(Key(o.to));
            if (it == by_addr_.end()) continue;
            members_[it->second].node->HandleDatagram(o.to.v6 ? m.a6 : m.a4, o.bytes, now_);
          }
          std::vector<Event> ev;
          m.node->TakeEvents(&ev);
          for (Event& e : ev) m.events.push_back(std::move(e));
        }
        if (!any) break;
      }
      now_.ms += 100;
      for (Member& m : members_) m.node->HandleTick(now_);
    }
  }
  Instant now() const { return now_; }

 private:
  struct Member {
    std::shared_ptr<Node> node;
    PeerAddress a4, a6;
    bool v4, v6;
    std::vector<Event> events;
  };
  using AddrKey = std::tuple<bool, uint32_t, std::array<uint8_t, 16>, uint16_t>;
  static AddrKey Key(const PeerAddress& a) { return {a.v6, a.ip, a.ip6, a.port}; }
  std::vector<Member> members_;
  std::map<AddrKey, size_t> by_addr_;
  Instant now_{1'000'000};
};

NodeId RandomishId(uint32_t n) {
  NodeId id{};
  uint64_t x = n * 0x9E3779B97F4A7C15ull;
  for (auto& b : id) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    b = static_cast<uint8_t>(x >> 56);
  }
  return id;
}

TEST(DhtNode6, Ipv6OnlyNodesBootstrapAnnounceAndFindEachOther) {
  Network net;
  for (uint32_t i = 1; i <= 20; ++i) net.Add(RandomishId(i), i, /*v4=*/false, /*v6=*/true);
  for (uint32_t i = 2; i <= 20; ++i) net.at(i).AddBootstrap(Addr6(i - 1), net.now());
  net.Run(20'000);
  for (uint32_t i = 1; i <= 20; ++i) {
    EXPECT_GE(net.at(i).table6().size(), 5u) << i;
    EXPECT_EQ(net.at(i).table().size(), 0u) << i;
  }
  const InfoHash ih = RandomishId(999);
  ASSERT_NE(net.at(3).GetPeers(ih, 7777, net.now()), 0u);
  net.Run(5'000);
  ASSERT_NE(net.at(17).GetPeers(ih, 0, net.now()), 0u);
  net.Run(5'000);
  std::vector<PeerAddress> found;
  for (const Event& e : net.events(17)) {
    if (e.kind != Event::Kind::kPeers) continue;
    EXPECT_TRUE(e.v6);
    found.insert(found.end(), e.peers.begin(), e.peers.end());
  }
  EXPECT_NE(std::find(found.begin(), found.end(), Addr6(3, 7777)), found.end());
}

TEST(DhtNode6, DualStackNodesFillTheIpv6TableThroughIpv4AndAnnounceInBothDhts) {
  Network net;
  // Dual-stack nodes 1..12 and IPv6-only nodes 13..16; every bootstrap is over IPv4 (or, for the
  // IPv6-only ones, to a dual-stack node's IPv6 address).
  for (uint32_t i = 1; i <= 12; ++i) net.Add(RandomishId(i), i, true, true);
  for (uint32_t i = 13; i <= 16; ++i) net.Add(RandomishId(i), i, false, true);
  for (uint32_t i = 13; i <= 16; ++i) net.at(i).AddBootstrap(Addr6(1), net.now());
  net.Run(3'000);
  ASSERT_EQ(net.at(1).table6().size(), 4u);  // the IPv6-only nodes
  for (uint32_t i = 2; i <= 12; ++i) net.at(i).AddBootstrap(Addr4(i - 1), net.now());
  net.Run(30'000);
  for (uint32_t i = 2; i <= 12; ++i) {
    EXPECT_GE(net.at(i).table().size(), 5u) << i;
    // Learnt from nodes6 in IPv4 answers (want n4 n6): the node was never given an IPv6 address.
    EXPECT_GE(net.at(i).table6().size(), 5u) << i;
  }

  // A dual-stack node announces in both DHTs; an IPv6-only node finds it over IPv6.
  const InfoHash ih = RandomishId(4242);
  ASSERT_NE(net.at(5).GetPeers(ih, 7000, net.now()), 0u);
  net.Run(5'000);
  int done4 = 0, done6 = 0;
  for (const Event& e : net.events(5)) {
    if (e.kind != Event::Kind::kLookupDone || e.info_hash != ih) continue;
    EXPECT_GT(e.announced, 0) << e.v6;
    (e.v6 ? done6 : done4) += 1;
  }
  EXPECT_EQ(done4, 1);
  EXPECT_EQ(done6, 1);
  ASSERT_NE(net.at(15).GetPeers(ih, 0, net.now()), 0u);
  ASSERT_NE(net.at(9).GetPeers(ih, 0, net.now()), 0u);
  net.Run(5'000);
  const auto found = [&](uint32_t n) {
    std::vector<PeerAddress> all;
    for (const Event& e : net.events(n)) {
      if (e.kind == Event::Kind::kPeers) all.insert(all.end(), e.peers.begin(), e.peers.end());
    }
    return all;
  };
  const std::vector<PeerAddress> f15 = found(15), f9 = found(9);
  EXPECT_NE(std::find(f15.begin(), f15.end(), Addr6(5, 7000)), f15.end());
  EXPECT_EQ(std::find(f15.begin(), f15.end(), Addr4(5, 7000)), f15.end());
  EXPECT_NE(std::find(f9.begin(), f9.end(), Addr6(5, 7000)), f9.end());
  EXPECT_NE(std::find(f9.begin(), f9.end(), Addr4(5, 7000)), f9.end());
}

}  // namespace
}  // namespace torrenty::engine::dht
