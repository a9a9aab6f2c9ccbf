// The DHT engine (engine/dht): KRPC codec, node ids and BEP 42, routing table, tokens, lookups
// over an in-memory network of nodes on virtual time, and the incoming query limits.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/codec/bencode.h"
#include "engine/dht/dht_node.h"
#include "engine/dht/krpc.h"
#include "engine/dht/node_id.h"
#include "engine/dht/routing_table.h"
#include "gtest/gtest.h"

namespace torrenty::engine::dht {
namespace {

NodeId IdOf(uint8_t first, uint8_t last = 0) {
  NodeId id{};
  id[0] = first;
  id[19] = last;
  return id;
}

PeerAddress Addr(uint32_t n, uint16_t port = 6881) { return PeerAddress{0x0A000000u + n, port}; }

std::string Id(const NodeId& id) { return std::string(id.begin(), id.end()); }

// ---------------------------------------------------------------------------------------------
// Codec

TEST(Krpc, QueriesRoundTrip) {
  const NodeId self = IdOf(1, 2), target = IdOf(3, 4);
  std::string out;
  EncodePing("aa", self, &out);
  EXPECT_EQ(out, "d1:ad2:id20:" + Id(self) + "e1:q4:ping1:t2:aa1:v4:TY011:y1:qe");
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->kind, Message::Kind::kQuery);
  EXPECT_EQ(m->method, Method::kPing);
  EXPECT_EQ(m->id, self);
  EXPECT_EQ(m->transaction, "aa");

  EncodeFindNode("t1", self, target, &out);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->method, Method::kFindNode);
  EXPECT_EQ(m->target, target);

  EncodeGetPeers("t2", self, target, &out);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->method, Method::kGetPeers);
  EXPECT_EQ(m->info_hash, target);

  EncodeAnnouncePeer("t3", self, target, 51413, "tok", &out);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->method, Method::kAnnouncePeer);
  EXPECT_EQ(m->port, 51413);
  EXPECT_EQ(m->token, "tok");
  EXPECT_FALSE(m->implied_port);
  // The encoder keeps keys sorted (a strict decoder elsewhere may insist).
  EXPECT_TRUE(bencode::Decode(out).ok());
}

TEST(Krpc, ResponseRoundTrip) {
  const NodeId self = IdOf(9);
  std::vector<NodeInfo> nodes = {{IdOf(1), Addr(1)}, {IdOf(2), Addr(2, 7000)}};
  std::vector<PeerAddress> values = {Addr(5, 1000), Addr(6, 2000)};
  std::string out;
  EncodeResponse("xy", self, nodes, "token", values, Addr(7, 99), &out);
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->kind, Message::Kind::kResponse);
  EXPECT_EQ(m->id, self);
  EXPECT_EQ(m->nodes, nodes);
  EXPECT_EQ(m->values, values);
  EXPECT_EQ(m->token, "token");
  ASSERT_TRUE(m->has_ip);
  EXPECT_EQ(m->ip, Addr(7, 99));

  EncodeError("zz", 203, "bad token", &out);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, Message::Kind::kError);
  EXPECT_EQ(m->error_code, 203);
  EXPECT_EQ(m->error_message, "bad token");
}

TEST(Krpc, RejectsMalformed) {
  const std::string id20(20, 'i');
  for (const std::string& bad : {
           std::string(""),
           std::string("le"),
           std::string("d1:t2:aa1:y1:qe"),                                      // no q/a
           "d1:ad2:id19:" + std::string(19, 'i') + "e1:q4:ping1:t2:aa1:y1:qe",  // short id
           "d1:ad2:id20:" + id20 + "e1:q9:find_node1:t2:aa1:y1:qe",             // no target
           "d1:ad2:id20:" + id20 + "e1:q4:ping1:t17:" + std::string(17, 't') + "1:y1:qe",
           "d1:rd2:id20:" + id20 + "5:nodes3:abce1:t2:aa1:y1:re",  // nodes % 26
           "d1:ad2:id20:" + id20 + "9:info_hash20:" + id20 +
               "4:porti1e5:token0:e1:q13:announce_peer1:t2:aa1:y1:qe",  // empty token
           std::string("d1:t2:aa1:y1:xe"),
           std::string(3000, 'd'),
       }) {
    EXPECT_FALSE(DecodeMessage(bad).ok()) << bad;
  }
  // Unknown methods decode, to be answered with error 204.
  absl::StatusOr<Message> m = DecodeMessage("d1:ad2:id20:" + id20 + "e1:q3:foo1:t2:aa1:y1:qe");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->method, Method::kUnknown);
}

TEST(Krpc, DropsAddressesNoNodeListensOn) {
  std::vector<NodeInfo> nodes = {{IdOf(1), PeerAddress{0xE0000001, 6881}},  // multicast
                                 {IdOf(2), PeerAddress{0xFFFFFFFF, 6881}},  // broadcast
                                 {IdOf(3), PeerAddress{0x00000001, 6881}},  // 0.0.0.0/8
                                 {IdOf(4), Addr(4, 0)},
                                 {IdOf(5), Addr(5)}};
  std::vector<PeerAddress> values = {PeerAddress{0xEFFFFFFA, 1900}, Addr(6, 0), Addr(7)};
  std::string out;
  EncodeResponse("t", IdOf(9), nodes, "tok", values, Addr(1), &out);
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->nodes, (std::vector<NodeInfo>{{IdOf(5), Addr(5)}}));
  EXPECT_EQ(m->values, (std::vector<PeerAddress>{Addr(7)}));
}

TEST(Krpc, BoundsNodesAndValues) {
  std::vector<NodeInfo> nodes;
  for (uint32_t i = 0; i < 60; ++i) nodes.push_back({IdOf(static_cast<uint8_t>(i)), Addr(i + 1)});
  std::vector<PeerAddress> values;
  for (uint32_t i = 0; i < 200; ++i) values.push_back(Addr(i + 1));
  std::string out;
  EncodeResponse("t", IdOf(1), nodes, "", {}, Addr(1), &out);
  absl::StatusOr<Message> m = DecodeMessage(out);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->nodes.size(), kMaxNodesPerMessage);
  EncodeResponse("t", IdOf(1), {}, "", values, Addr(1), &out);
  m = DecodeMessage(out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->values.size(), 200u);
}

// ---------------------------------------------------------------------------------------------
// Node ids

TEST(NodeIdTest, Bep42Vectors) {
  struct V {
    uint32_t ip;
    uint8_t r;
    uint8_t prefix[3];
  };
  // The examples of BEP 42.
  const V vectors[] = {
      {(124u << 24) | (31u << 16) | (75u << 8) | 21u, 1, {0x5f, 0xbf, 0xbf}},
      {(21u << 24) | (75u << 16) | (31u << 8) | 124u, 86, {0x5a, 0x3c, 0xe9}},
      {(65u << 24) | (23u << 16) | (51u << 8) | 170u, 22, {0xa5, 0xd4, 0x32}},
      {(84u << 24) | (124u << 16) | (73u << 8) | 14u, 65, {0x1b, 0x03, 0x21}},
      {(43u << 24) | (213u << 16) | (53u << 8) | 83u, 90, {0xe5, 0x6f, 0x6c}},
  };
  for (const V& v : vectors) {
    const NodeId id = Bep42Id(v.ip, v.r, NodeId{});
    EXPECT_EQ(id[0], v.prefix[0]);
    EXPECT_EQ(id[1], v.prefix[1]);
    EXPECT_EQ(id[2] & 0xF8, v.prefix[2] & 0xF8);
    EXPECT_EQ(id[19], v.r);
    EXPECT_TRUE(Bep42Valid(v.ip, id));
    NodeId wrong = id;
    wrong[0] ^= 0x40;
    EXPECT_FALSE(Bep42Valid(v.ip, wrong));
  }
  // Loopback and private addresses are exempt.
  EXPECT_TRUE(Bep42Valid(0x7F000001, IdOf(0x12)));
  EXPECT_TRUE(Bep42Valid(0xC0A80001, IdOf(0x12)));
  EXPECT_FALSE(IsPublicIpv4(0x0A000001));
  EXPECT_TRUE(IsPublicIpv4(0x08080808));
}

TEST(NodeIdTest, Distance) {
  EXPECT_EQ(CommonPrefixBits(IdOf(0x80), IdOf(0x00)), 0);
  EXPECT_EQ(CommonPrefixBits(IdOf(0x01), IdOf(0x00)), 7);
  EXPECT_EQ(CommonPrefixBits(IdOf(0, 1), IdOf(0, 0)), 159);
  EXPECT_EQ(CommonPrefixBits(IdOf(5), IdOf(5)), 160);
  EXPECT_TRUE(CloserTo(IdOf(0x10), IdOf(0x11), IdOf(0x20)));
  EXPECT_FALSE(CloserTo(IdOf(0x10), IdOf(0x20), IdOf(0x11)));
}

// ---------------------------------------------------------------------------------------------
// Routing table

TEST(RoutingTableTest, BucketsHoldEightAndReplaceBadNodes) {
  RoutingTable t(IdOf(0), Instant{0});
  // Ids starting with bit 1 all share no prefix with ours: bucket 0.
  for (uint8_t i = 0; i < 8; ++i) {
    EXPECT_FALSE(t.HeardResponse({IdOf(0x80 | i), Addr(i + 1)}, Instant{1000}).has_value());
  }
  EXPECT_EQ(t.size(), 8u);
  const NodeInfo ninth{IdOf(0x80 | 9), Addr(20)};
  // All good: the newcomer waits as a replacement, nothing to ping.
  EXPECT_FALSE(t.HeardResponse(ninth, Instant{2000}).has_value());
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.replacements(), 1u);
  EXPECT_FALSE(t.Contains(ninth));
  // After 15 minutes they are questionable: the oldest is offered for a ping.
  const Instant later{1000 + RoutingTable::kGoodMs + 1};
  std::optional<NodeInfo> ping = t.HeardResponse(ninth, later);
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->id, IdOf(0x80));
  // Two unanswered queries make it bad, and the replacement takes its place.
  t.Failed(*ping);
  EXPECT_TRUE(t.Contains(*ping));
  t.Failed(*ping);
  EXPECT_FALSE(t.Contains(*ping));
  EXPECT_TRUE(t.Contains(ninth));
  EXPECT_EQ(t.size(), 8u);
}

TEST(RoutingTableTest, ClosestAndStatus) {
  RoutingTable t(IdOf(0), Instant{0});
  for (uint8_t i = 1; i <= 40; ++i) t.HeardResponse({IdOf(i), Addr(i)}, Instant{0});
  std::vector<NodeInfo> c = t.Closest(IdOf(0x21), 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id, IdOf(0x21));
  EXPECT_EQ(c[1].id, IdOf(0x20));
  EXPECT_EQ(c[2].id, IdOf(0x23));
  // The same id from another address does not displace the node we know.
  t.HeardResponse({IdOf(0x21), Addr(99)}, Instant{0});
  EXPECT_TRUE(t.Contains({IdOf(0x21), Addr(0x21)}));
  EXPECT_EQ(t.GoodNodes(Instant{0}).size(), t.size());
  EXPECT_TRUE(t.GoodNodes(Instant{RoutingTable::kGoodMs}).empty());
}

TEST(RoutingTableTest, RefreshTargetsFallInTheStaleBucket) {
  RoutingTable t(IdOf(0), Instant{0});
  t.HeardResponse({IdOf(0x80), Addr(1)}, Instant{0});
  t.HeardResponse({IdOf(0x10), Addr(2)}, Instant{0});  // bucket 3
  EXPECT_FALSE(t.NextRefresh(Instant{1000}, IdOf(0xFF)).has_value());
  std::vector<int> refreshed;
  const Instant late{RoutingTable::kRefreshMs + 1};
  while (auto target = t.NextRefresh(late, IdOf(0xFF, 0xFF))) {
    refreshed.push_back(t.BucketIndex(*target));
  }
  EXPECT_EQ(refreshed, (std::vector<int>{0, 1, 2, 3, 4}));
}

// ---------------------------------------------------------------------------------------------
// Nodes on an in-memory network

class Network {
 public:
  Node& Add(const NodeId& id, uint32_t n, NodeConfig config = {}) {
    nodes_[Addr(n)] = std::make_unique<Node>(id, config, n, now_);
    return *nodes_[Addr(n)];
  }
  Node& at(uint32_t n) { return *nodes_[Addr(n)]; }
  // Delivers datagrams until quiet, then ticks; `drop` silences a node (it never answers).
  void Run(int64_t ms) {
    const Instant end{now_.ms + ms};
    while (now_ < end) {
      for (int round = 0; round < 100; ++round) {
        bool any = false;
        for (auto& [addr, node] : nodes_) {
          node->TakeOutgoing(&out_);
          for (Outgoing& o : out_) {
            any = true;
            ++sent_;
            auto it = nodes_.find(o.to);
            if (it == nodes_.end() || silent_.count(o.to)) continue;
            it->second->HandleDatagram(addr, o.bytes, now_);
          }
          std::vector<Event> ev;
          node->TakeEvents(&ev);
          for (Event& e : ev) events_[addr].push_back(std::move(e));
        }
        if (!any) break;
      }
      now_.ms += 100;
      for (auto& [addr, node] : nodes_) node->HandleTick(now_);
    }
  }
  std::vector<Event>& events(uint32_t n) { return events_[Addr(n)]; }
  void Silence(uint32_t n) { silent_[Addr(n)] = true; }
  Instant now() const { return now_; }
  uint64_t sent() const { return sent_; }

 private:
  struct Less {
    bool operator()(const PeerAddress& a, const PeerAddress& b) const {
      return a.ip != b.ip ? a.ip < b.ip : a.port < b.port;
    }
  };
  std::map<PeerAddress, std::unique_ptr<Node>, Less> nodes_;
  std::map<PeerAddress, bool, Less> silent_;
  std::map<PeerAddress, std::vector<Event>, Less> events_;
  std::vector<Outgoing> out_;
  Instant now_{1'000'000};
  uint64_t sent_ = 0;
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

TEST(DhtNode, BootstrapFillsTables) {
  Network net;
  for (uint32_t i = 1; i <= 30; ++i) net.Add(RandomishId(i), i);
  // A chain: each node knows only the previous one.
  for (uint32_t i = 2; i <= 30; ++i) net.at(i).AddBootstrap(Addr(i - 1), net.now());
  net.Run(20'000);
  for (uint32_t i = 1; i <= 30; ++i) EXPECT_GE(net.at(i).table().size(), 5u) << i;
}

TEST(DhtNode, AnnounceThenGetPeersFindsThePeer) {
  Network net;
  for (uint32_t i = 1; i <= 40; ++i) net.Add(RandomishId(i), i);
  for (uint32_t i = 2; i <= 40; ++i) net.at(i).AddBootstrap(Addr(1), net.now());
  net.Run(10'000);
  InfoHash ih = RandomishId(1000);
  ASSERT_NE(net.at(7).GetPeers(ih, 51413, net.now()), 0u);
  net.Run(10'000);
  int announced = -1;
  for (const Event& e : net.events(7)) {
    if (e.kind == Event::Kind::kLookupDone && e.info_hash == ih) announced = e.announced;
  }
  EXPECT_EQ(announced, 8);
  // The 8 closest nodes stored it; another node's lookup finds it.
  size_t stored = 0;
  for (uint32_t i = 1; i <= 40; ++i) stored += net.at(i).stored_peers();
  EXPECT_EQ(stored, 8u);
  net.at(33).GetPeers(ih, 0, net.now());
  net.Run(10'000);
  std::vector<PeerAddress> found;
  bool done = false;
  for (const Event& e : net.events(33)) {
    if (e.kind == Event::Kind::kPeers) found.insert(found.end(), e.peers.begin(), e.peers.end());
    if (e.kind == Event::Kind::kLookupDone && e.info_hash == ih) done = true;
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(found, (std::vector<PeerAddress>{Addr(7, 51413)}));
}

TEST(DhtNode, LookupBoundsQueriesInFlightAndSurvivesSilentNodes) {
  Network net;
  NodeConfig config;
  config.alpha = 3;
  for (uint32_t i = 1; i <= 40; ++i) net.Add(RandomishId(i), i, config);
  for (uint32_t i = 2; i <= 40; ++i) net.at(i).AddBootstrap(Addr(1), net.now());
  net.Run(10'000);
  for (uint32_t i = 20; i <= 40; ++i) net.Silence(i);
  Node& n = net.at(2);
  const size_t before = n.outstanding();
  const uint64_t lookup = n.GetPeers(RandomishId(5000), 0, net.now());
  ASSERT_NE(lookup, 0u);
  std::vector<Outgoing> out;
  n.TakeOutgoing(&out);
  EXPECT_LE(out.size(), 3u);  // alpha
  EXPECT_LE(n.outstanding() - before, 3u);
  for (Outgoing& o : out) net.at(o.to.ip - 0x0A000000u).HandleDatagram(Addr(2), o.bytes, net.now());
  net.Run(30'000);
  bool done = false;
  for (const Event& e : net.events(2))
    done |= e.kind == Event::Kind::kLookupDone && e.lookup == lookup;
  EXPECT_TRUE(done);
  EXPECT_GT(n.stats().timeouts, 0u);
  EXPECT_EQ(n.lookups(), 0u);
}

TEST(DhtNode, HostileAnswersCannotGrowALookup) {
  NodeConfig config;
  Node n(IdOf(0), config, 7, Instant{0});
  std::map<uint32_t, NodeId> ids = {{Addr(1).ip, IdOf(0x80)}};
  // One node in the table, learnt from a bootstrap answer.
  n.AddBootstrap(Addr(1), Instant{0});
  std::vector<Outgoing> out;
  n.TakeOutgoing(&out);
  absl::StatusOr<Message> q = DecodeMessage(out[0].bytes);
  ASSERT_TRUE(q.ok());
  std::string resp;
  EncodeResponse(q->transaction, IdOf(0x80), {}, "", {}, Addr(1), &resp);
  n.HandleDatagram(Addr(1), resp, Instant{1});
  ASSERT_NE(n.GetPeers(IdOf(0x40), 0, Instant{2}), 0u);
  // Every node asked answers with 32 new nodes, each batch closer to the target than the last.
  uint32_t next = 1000;
  size_t answered = 0;
  for (int round = 0; round < 40; ++round) {
    n.TakeOutgoing(&out);
    for (const Outgoing& o : out) {
      absl::StatusOr<Message> m = DecodeMessage(o.bytes);
      ASSERT_TRUE(m.ok());
      if (m->method != Method::kGetPeers) continue;
      std::vector<NodeInfo> nodes;
      for (int i = 0; i < 32; ++i, ++next) {
        NodeId id = IdOf(0x40);
        id[1] = static_cast<uint8_t>(200 - 4 * round);
        id[18] = static_cast<uint8_t>(next >> 8);
        id[19] = static_cast<uint8_t>(next);
        ids[Addr(next).ip] = id;
        nodes.push_back({id, Addr(next)});
      }
      EncodeResponse(m->transaction, ids[o.to.ip], nodes, "tok", {}, o.to, &resp);
      n.HandleDatagram(o.to, resp, Instant{3});
      ++answered;
    }
    EXPECT_LE(n.lookup_candidates(), 2 * config.max_candidates + 8);
  }
  EXPECT_GT(answered, 40u);
}

TEST(DhtNode, TakesABep42IdForTheAddressOthersReport) {
  Node n(IdOf(1), NodeConfig{}, 7, Instant{0});
  const PeerAddress ours{0x08080404, 6881};
  std::vector<Outgoing> out;
  std::vector<Event> events;
  for (uint32_t i = 1; i <= 5; ++i) {
    EXPECT_EQ(n.id(), IdOf(1)) << i;
    const PeerAddress responder{0x01020300u + i, 6881};
    n.AddBootstrap(responder, Instant{i});
    n.TakeOutgoing(&out);
    absl::StatusOr<Message> q = DecodeMessage(out.back().bytes);
    ASSERT_TRUE(q.ok());
    std::string resp;
    EncodeResponse(q->transaction, Bep42Id(responder.ip, 1, IdOf(static_cast<uint8_t>(i))), {}, "",
                   {}, ours, &resp);
    n.HandleDatagram(responder, resp, Instant{i});
    // The same responder again does not count twice.
    n.AddBootstrap(responder, Instant{i});
    n.TakeOutgoing(&out);
    q = DecodeMessage(out.back().bytes);
    EncodeResponse(q->transaction, Bep42Id(responder.ip, 1, IdOf(static_cast<uint8_t>(i))), {}, "",
                   {}, ours, &resp);
    n.HandleDatagram(responder, resp, Instant{i});
  }
  EXPECT_NE(n.id(), IdOf(1));
  EXPECT_TRUE(Bep42Valid(ours.ip, n.id()));
  EXPECT_EQ(n.table().self(), n.id());
  EXPECT_EQ(n.table().size(), 5u);  // the nodes we knew stay
  n.TakeEvents(&events);
  bool logged = false;
  for (const Event& e : events) logged |= e.text.find("BEP 42") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST(DhtNode, TokensRotateAndThePreviousOneStillCounts) {
  NodeConfig config;
  Node n(IdOf(1), config, 7, Instant{0});
  const uint32_t ip = 0x0A000002;
  const std::string t0 = n.TokenFor(ip);
  EXPECT_TRUE(n.TokenValid(ip, t0));
  EXPECT_FALSE(n.TokenValid(ip + 1, t0));
  n.HandleTick(Instant{config.token_rotate_ms + 1000});
  EXPECT_NE(n.TokenFor(ip), t0);
  EXPECT_TRUE(n.TokenValid(ip, t0));
  n.HandleTick(Instant{2 * config.token_rotate_ms + 2000});
  EXPECT_FALSE(n.TokenValid(ip, t0));
}

std::string Query(const std::string& body_a, const std::string& q, const std::string& t = "aa") {
  return "d1:ad" + body_a + "e1:q" + std::to_string(q.size()) + ":" + q + "1:t" +
         std::to_string(t.size()) + ":" + t + "1:y1:qe";
}

TEST(DhtNode, AnnounceNeedsAValidTokenAndStoreIsBounded) {
  NodeConfig config;
  config.max_peers_per_hash = 3;
  config.max_hashes = 2;
  config.per_ip_rate = 1000;
  config.per_ip_burst = 1000;
  Node n(IdOf(1), config, 7, Instant{0});
  std::vector<Outgoing> out;
  const std::string id = "2:id20:" + Id(IdOf(0x55));
  const auto announce = [&](uint32_t from, const InfoHash& ih, uint16_t port, std::string token) {
    n.HandleDatagram(Addr(from),
                     Query(id + "9:info_hash20:" + Id(ih) + "4:porti" + std::to_string(port) +
                               "e5:token" + std::to_string(token.size()) + ":" + token,
                           "announce_peer"),
                     Instant{10});
    n.TakeOutgoing(&out);
    for (const Outgoing& o : out) {
      absl::StatusOr<Message> m = DecodeMessage(o.bytes);
      if (m.ok() && o.to == Addr(from)) return m->kind == Message::Kind::kResponse;
    }
    return false;
  };
  EXPECT_FALSE(announce(2, IdOf(9), 100, "wrongtok"));
  EXPECT_EQ(n.stored_peers(), 0u);
  EXPECT_EQ(n.stats().bad_tokens, 1u);
  // A token is bound to the address it was given to.
  EXPECT_FALSE(announce(3, IdOf(9), 100, n.TokenFor(Addr(2).ip)));
  for (uint32_t i = 2; i < 10; ++i) EXPECT_TRUE(announce(i, IdOf(9), 100, n.TokenFor(Addr(i).ip)));
  EXPECT_EQ(n.stored_peers(), 3u);
  EXPECT_TRUE(announce(2, IdOf(10), 100, n.TokenFor(Addr(2).ip)));
  EXPECT_TRUE(announce(2, IdOf(11), 100, n.TokenFor(Addr(2).ip)));
  EXPECT_EQ(n.stored_hashes(), 2u);

  // get_peers returns what was stored, with a token.
  n.HandleDatagram(Addr(50), Query(id + "9:info_hash20:" + Id(IdOf(9)), "get_peers"), Instant{20});
  n.TakeOutgoing(&out);
  ASSERT_FALSE(out.empty());
  absl::StatusOr<Message> m = DecodeMessage(out[0].bytes);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->values.size(), 3u);
  EXPECT_TRUE(n.TokenValid(Addr(50).ip, m->token));
  // Stored peers expire.
  n.HandleTick(Instant{config.peer_ttl_ms + 120'000});
  EXPECT_EQ(n.stored_peers(), 0u);
  EXPECT_EQ(n.stored_hashes(), 0u);
}

size_t Responses(const std::vector<Outgoing>& out) {
  size_t n = 0;
  for (const Outgoing& o : out) {
    absl::StatusOr<Message> m = DecodeMessage(o.bytes);
    n += m.ok() && m->kind == Message::Kind::kResponse;
  }
  return n;
}

TEST(DhtNode, QueryFloodIsLimitedPerAddressAndOverall) {
  NodeConfig config;
  config.per_ip_rate = 50;
  config.per_ip_burst = 100;
  config.global_rate = 500;
  config.global_burst = 500;
  config.max_tracked_ips = 64;
  Node n(IdOf(1), config, 7, Instant{0});
  std::vector<Outgoing> out;
  std::vector<Event> ev;
  const std::string ping = Query("2:id20:" + Id(IdOf(0x55)), "ping");
  // 10,000 pings from one address within one second: the burst plus ~50 answered.
  size_t answered = 0;
  for (int i = 0; i < 10'000; ++i) {
    n.HandleDatagram(Addr(2), ping, Instant{i / 10});
    n.TakeOutgoing(&out);
    answered += Responses(out);
  }
  EXPECT_LE(answered, 160u);
  EXPECT_GE(answered, 100u);
  EXPECT_GE(n.stats().queries_dropped, 9800u);
  n.TakeEvents(&ev);
  ASSERT_FALSE(ev.empty());
  EXPECT_NE(ev[0].text.find("rate limit"), std::string::npos);
  EXPECT_EQ(ev.size(), 1u);  // one line per 10 s, not per query
  // From many addresses: the overall limit holds, and the per-address map stays bounded.
  answered = 0;
  for (uint32_t i = 0; i < 20'000; ++i) {
    n.HandleDatagram(Addr(1000 + i), ping, Instant{5000 + i / 20});
    n.TakeOutgoing(&out);
    answered += Responses(out);
  }
  EXPECT_LE(answered, 500u + 500u * 1 + 10u);
  EXPECT_LE(n.tracked_ips(), 64u);
  EXPECT_LE(n.outstanding(), config.max_outstanding);
  // One unknown sender is pinged once while that ping is in flight, not once per query.
  EXPECT_LE(n.stats().queries_out, config.max_outstanding / 2 + 1);
}

TEST(DhtNode, IgnoresAnswersFromOtherAddressesAndGarbage) {
  Node n(IdOf(1), NodeConfig{}, 7, Instant{0});
  n.AddBootstrap(Addr(2), Instant{0});
  std::vector<Outgoing> out;
  n.TakeOutgoing(&out);
  ASSERT_EQ(out.size(), 1u);
  absl::StatusOr<Message> q = DecodeMessage(out[0].bytes);
  ASSERT_TRUE(q.ok());
  std::string resp;
  EncodeResponse(q->transaction, IdOf(0x77), {}, "", {}, Addr(1), &resp);
  n.HandleDatagram(Addr(3), resp, Instant{1});  // spoofed source
  EXPECT_EQ(n.table().size(), 0u);
  EXPECT_EQ(n.stats().unexpected, 1u);
  n.HandleDatagram(Addr(2), "garbage", Instant{1});
  EXPECT_EQ(n.stats().malformed, 1u);
  n.HandleDatagram(Addr(2), resp, Instant{1});
  EXPECT_EQ(n.table().size(), 1u);
}

TEST(DhtNode, Bep42KeepsMismatchedPublicNodesOutOfTheTable) {
  Node n(IdOf(1), NodeConfig{}, 7, Instant{0});
  const PeerAddress pub{0x08080808, 6881};
  n.AddBootstrap(pub, Instant{0});
  std::vector<Outgoing> out;
  n.TakeOutgoing(&out);
  absl::StatusOr<Message> q = DecodeMessage(out[0].bytes);
  ASSERT_TRUE(q.ok());
  std::string resp;
  EncodeResponse(q->transaction, IdOf(0x77), {}, "", {}, Addr(1), &resp);
  n.HandleDatagram(pub, resp, Instant{1});
  EXPECT_EQ(n.table().size(), 0u);
  n.AddBootstrap(pub, Instant{2});
  n.TakeOutgoing(&out);
  q = DecodeMessage(out[0].bytes);
  EncodeResponse(q->transaction, Bep42Id(pub.ip, 3, IdOf(0x77)), {}, "", {}, Addr(1), &resp);
  n.HandleDatagram(pub, resp, Instant{3});
  EXPECT_EQ(n.table().size(), 1u);
}

}  // namespace
}  // namespace torrenty::engine::dht
