#include "engine/dht/dht_node.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "engine/base/sha1.h"

namespace torrenty::engine::dht {
namespace {

constexpr int64_t kMaintenanceMs = 1000;
constexpr int64_t kExpireEveryMs = 60'000;
// Questionable nodes are pinged again at most this often, a few per maintenance round.
constexpr int64_t kRepingMs = 5 * 60 * 1000;
constexpr size_t kPingsPerRound = 2;

std::string TidBytes(uint16_t tid) {
  return std::string{static_cast<char>(tid >> 8), static_cast<char>(tid & 255)};
}

// IPv6 answers stay within the minimum IPv6 MTU (1280): with 8 nodes of each family, half as
// many 18-byte values as IPv4 answers carry 6-byte ones.
constexpr size_t kValues6Divisor = 2;

PeerAddress HostOf(const PeerAddress& a) {
  PeerAddress h = a;
  h.port = 0;
  return h;
}

}  // namespace

Node::Node(const NodeId& id, NodeConfig config, uint64_t seed, Instant now)
    : id_(id), config_(config), rng_(seed), table_(id, now), table6_(id, now) {
  config_.alpha = std::clamp(config_.alpha, 3, 8);
  config_.k = std::clamp(config_.k, 1, RoutingTable::kBucketSize);
  next_tid_ = static_cast<uint16_t>(rng_());
  secret_ = rng_();
  previous_secret_ = rng_();
  secret_since_ = now;
  global_ = QueryBucket{int64_t{config_.global_burst} * 1000, now};
  last_expire_ = now;
  last_maintenance_ = now;
}

// ---------------------------------------------------------------------------------------------
// Tokens

std::string Node::TokenWith(uint64_t secret, const PeerAddress& addr) const {
  uint8_t buf[24];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<uint8_t>(secret >> (56 - 8 * i));
  size_t len = 8;
  if (addr.v6) {
    std::memcpy(buf + 8, addr.ip6.data(), 16);
    len += 16;
  } else {
    for (int i = 0; i < 4; ++i) buf[8 + i] = static_cast<uint8_t>(addr.ip >> (24 - 8 * i));
    len += 4;
  }
  const Sha1Digest d = Sha1(absl::MakeConstSpan(buf, len));
  return std::string(reinterpret_cast<const char*>(d.data()), 8);
}

std::string Node::TokenFor(const PeerAddress& addr) const { return TokenWith(secret_, addr); }

bool Node::TokenValid(const PeerAddress& addr, std::string_view token) const {
  return token == TokenWith(secret_, addr) || token == TokenWith(previous_secret_, addr);
}

// ---------------------------------------------------------------------------------------------
// Input

void Node::HandleDatagram(const PeerAddress& from, std::string_view bytes, Instant now) {
  ++stats_.datagrams_in;
  if (from.port == 0) return;
  absl::StatusOr<Message> m = DecodeMessage(bytes);
  if (!m.ok()) {
    ++stats_.malformed;
    return;
  }
  if (m->kind == Message::Kind::kQuery) {
    HandleQuery(from, *m, now);
  } else {
    HandleReply(from, *m, now);
  }
}

bool Node::Take(QueryBucket& b, int rate, int burst, Instant now) {
  const int64_t cap = int64_t{burst} * 1000;
  if (now.ms > b.last.ms) {
    b.milli_tokens = std::min(cap, b.milli_tokens + (now.ms - b.last.ms) * rate);
    b.last = now;
  }
  if (b.milli_tokens < 1000) return false;
  b.milli_tokens -= 1000;
  return true;
}

bool Node::AdmitQuery(const PeerAddress& from, Instant now) {
  PeerAddress ip = HostOf(from);
  if (ip.v6) std::fill(ip.ip6.begin() + 8, ip.ip6.end(), 0);
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) {
    // Forgetting every address at the cap bounds the map; a flood from many addresses still
    // meets the overall limit.
    if (per_ip_.size() >= config_.max_tracked_ips) per_ip_.clear();
    it = per_ip_.emplace(ip, QueryBucket{int64_t{config_.per_ip_burst} * 1000, now}).first;
  }
  bool ok = Take(it->second, config_.per_ip_rate, config_.per_ip_burst, now);
  if (ok) ok = Take(global_, config_.global_rate, config_.global_burst, now);
  if (ok) return true;
  ++stats_.queries_dropped;
  ++dropped_since_log_;
  if (now.ms - last_drop_log_.ms >= config_.drop_log_every_ms) {
    Log(absl::StrCat("dht: query rate limit: dropped ", dropped_since_log_, " queries (last from ",
                     ip.IpString(), ")"));
    dropped_since_log_ = 0;
    last_drop_log_ = now;
  }
  return false;
}

void Node::Reply(const PeerAddress& to, std::string&& bytes) {
  out_.push_back(Outgoing{to, std::move(bytes)});
}

void Node::HandleQuery(const PeerAddress& from, const Message& m, Instant now) {
  ++stats_.queries_in;
  if (!AdmitQuery(from, now)) return;
  std::string out;
  const NodeInfo sender{m.id, from};
  static const std::vector<NodeInfo> kNoNodes;
  static const std::vector<PeerAddress> kNoValues;
  switch (m.method) {
    case Method::kPing:
      EncodeResponse(m.transaction, id_, kNoNodes, {}, kNoValues, from, &out);
      break;
    case Method::kFindNode:
      EncodeResponse(m.transaction, id_, ClosestFor(m.target, m.want, from.v6), {}, kNoValues, from,
                     &out);
      break;
    case Method::kGetPeers: {
      // The two DHTs are independent (BEP 32): a query over IPv6 gets the peers that announced
      // over IPv6, and one over IPv4 the IPv4 ones.
      std::vector<PeerAddress> values;
      if (auto it = store_.find(m.info_hash); it != store_.end()) {
        const std::vector<StoredPeer>& peers = it->second;
        const size_t limit =
            from.v6 ? config_.max_values_per_reply / kValues6Divisor : config_.max_values_per_reply;
        const size_t start = rng_() % peers.size();
        for (size_t i = 0; i < peers.size() && values.size() < limit; ++i) {
          const PeerAddress& a = peers[(start + i) % peers.size()].addr;
          if (a.v6 == from.v6) values.push_back(a);
        }
      }
      EncodeResponse(m.transaction, id_, ClosestFor(m.info_hash, m.want, from.v6), TokenFor(from),
                     values, from, &out);
      break;
    }
    case Method::kAnnouncePeer: {
      if (!TokenValid(from, m.token)) {
        ++stats_.bad_tokens;
        EncodeError(m.transaction, 203, "bad token", &out);
        break;
      }
      PeerAddress peer = from;
      if (!m.implied_port) peer.port = m.port;
      Store(m.info_hash, peer, now);
      EncodeResponse(m.transaction, id_, kNoNodes, {}, kNoValues, from, &out);
      break;
    }
    case Method::kUnknown:
      EncodeError(m.transaction, 204, "method unknown", &out);
      break;
  }
  Reply(from, std::move(out));
  if (m.read_only || m.id == id_) return;
  if (from.v6 && !config_.ipv6) return;
  RoutingTable& table = TableFor(from.v6);
  if (table.Contains(sender)) {
    table.HeardQuery(sender, now);
  } else if (verifying_.size() < config_.max_outstanding / 2 && !verifying_.contains(from) &&
             table.HasRoomFor(m.id, now) && (!config_.enforce_bep42 || Bep42Valid(from, m.id))) {
    // A node that queries us may belong in the table, but only an answer proves its address.
    if (SendQuery(from, &m.id, Method::kPing, 0, {}, {}, 0, now)) {
      pending_[static_cast<uint16_t>(next_tid_ - 1)].verify = true;
      verifying_.insert(from);
    }
  }
}

std::vector<NodeInfo> Node::ClosestFor(const NodeId& target, uint8_t want, bool v6) const {
  if (want == 0) want = v6 ? kWantN6 : kWantN4;
  std::vector<NodeInfo> nodes;
  if (want & kWantN4) nodes = table_.Closest(target, config_.k);
  if (want & kWantN6) {
    for (const NodeInfo& n : table6_.Closest(target, config_.k)) nodes.push_back(n);
  }
  return nodes;
}

uint8_t Node::WantFor(bool v6) const {
  if (!config_.ipv6) return 0;
  const RoutingTable& other = v6 ? table_ : table6_;
  if (other.size() >= static_cast<size_t>(RoutingTable::kBucketSize)) return 0;
  return kWantN4 | kWantN6;
}

void Node::Store(const InfoHash& info_hash, const PeerAddress& peer, Instant now) {
  if (peer.port == 0) return;
  auto it = store_.find(info_hash);
  if (it == store_.end()) {
    if (store_.size() >= config_.max_hashes) return;
    it = store_.emplace(info_hash, std::vector<StoredPeer>{}).first;
  }
  std::vector<StoredPeer>& peers = it->second;
  ++stats_.announces_stored;
  for (StoredPeer& p : peers) {
    if (p.addr == peer) {
      p.added = now;
      return;
    }
  }
  if (peers.size() < config_.max_peers_per_hash) {
    peers.push_back(StoredPeer{peer, now});
    return;
  }
  auto oldest = std::min_element(peers.begin(), peers.end(),
                                 [](const auto& a, const auto& b) { return a.added < b.added; });
  *oldest = StoredPeer{peer, now};
}

size_t Node::lookup_candidates() const {
  size_t n = 0;
  for (const auto& [id, l] : lookups_) n += l->candidates.size();
  return n;
}

size_t Node::stored_peers() const {
  size_t n = 0;
  for (const auto& [hash, peers] : store_) n += peers.size();
  return n;
}

void Node::Heard(const NodeInfo& node, Instant now) {
  if (node.addr.v6 && !config_.ipv6) return;
  if (config_.enforce_bep42 && !Bep42Valid(node.addr, node.id)) return;
  RoutingTable& table = TableFor(node.addr.v6);
  std::optional<NodeInfo> ping = table.HeardResponse(node, now);
  if (ping.has_value()) {
    table.MarkPinged(*ping, now);
    SendQuery(ping->addr, &ping->id, Method::kPing, 0, {}, {}, 0, now);
  }
}

void Node::VoteExternalIp(const PeerAddress& voter_addr, const PeerAddress& reported, Instant now) {
  const PeerAddress ip = HostOf(reported), voter = HostOf(voter_addr);
  if (ip.v6 != voter.v6 || !IsPublic(ip)) return;
  if (ip == (ip.v6 ? external_ip6_ : external_ip_)) return;
  // One vote per responding address, among a bounded set of candidates.
  if (voters_.size() >= 256 || ip_votes_.size() >= 16) {
    voters_.clear();
    ip_votes_.clear();
  }
  if (!voters_.insert(voter).second) return;
  if (++ip_votes_[ip] < config_.external_ip_votes) return;
  if (ip.v6) {
    external_ip6_ = ip;
  } else {
    external_ip_ = ip;
    has_external_ip4_ = true;
  }
  voters_.clear();
  ip_votes_.clear();
  // One id serves both DHTs (BEP 32); it follows the IPv4 address when we know one, since an id
  // cannot match two addresses.
  if (Bep42Valid(ip, id_) || (ip.v6 && has_external_ip4_)) return;
  const NodeId fresh = Bep42Id(ip, static_cast<uint8_t>(rng_()), RandomId());
  const std::vector<NodeInfo> good = table_.GoodNodes(now);
  const std::vector<NodeInfo> good6 = table6_.GoodNodes(now);
  id_ = fresh;
  table_ = RoutingTable(id_, now);
  table6_ = RoutingTable(id_, now);
  for (const NodeInfo& n : good) table_.HeardResponse(n, now);
  for (const NodeInfo& n : good6) table6_.HeardResponse(n, now);
  Log(absl::StrCat("dht: our address is ", ip.IpString(), "; new node id from it (BEP 42)"));
}

void Node::HandleReply(const PeerAddress& from, const Message& m, Instant now) {
  if (m.transaction.size() != 2) {
    ++stats_.unexpected;
    return;
  }
  const uint16_t tid = static_cast<uint16_t>((static_cast<uint8_t>(m.transaction[0]) << 8) |
                                             static_cast<uint8_t>(m.transaction[1]));
  auto it = pending_.find(tid);
  // Only the address we asked may answer: anyone else could be spoofing.
  if (it == pending_.end() || !(it->second.to == from)) {
    ++stats_.unexpected;
    return;
  }
  const Pending p = it->second;
  if (m.kind == Message::Kind::kResponse && p.id_known && !(m.id == p.id)) {
    ++stats_.unexpected;  // the timeout will count it as a failure
    return;
  }
  pending_.erase(it);
  if (p.verify) verifying_.erase(p.to);
  ++stats_.responses_in;
  const bool ok = m.kind == Message::Kind::kResponse;
  const NodeInfo node{m.id, from};
  if (ok) Heard(node, now);
  if (ok && m.has_ip) VoteExternalIp(from, m.ip, now);
  // Dual-stack bootstrap (BEP 32): while one family's table is empty, nodes of that family in
  // any answer start the lookup of our id there.
  if (ok && config_.ipv6) {
    if (from.v6 && table_.size() == 0 && !m.nodes.empty()) SeedSelfLookup(false, m.nodes, now);
    if (!from.v6 && table6_.size() == 0 && !m.nodes6.empty()) SeedSelfLookup(true, m.nodes6, now);
  }

  Lookup* lookup = nullptr;
  if (p.lookup != 0) {
    if (auto l = lookups_.find(p.lookup); l != lookups_.end()) lookup = l->second.get();
  }
  if (lookup == nullptr) {
    // A bootstrap answer seeds the lookup of our own id, which fills the table near us.
    if (ok && p.method == Method::kFindNode && !p.id_known) {
      SeedSelfLookup(from.v6, from.v6 ? m.nodes6 : m.nodes, now);
    }
    return;
  }
  for (Candidate& c : lookup->candidates) {
    if (c.node.addr == from && c.state == Candidate::State::kInFlight) {
      c.state = ok ? Candidate::State::kAnswered : Candidate::State::kFailed;
      if (ok) c.token = m.token;
      --lookup->in_flight;
      break;
    }
  }
  if (ok) {
    ++lookup->responded;
    for (const NodeInfo& n : lookup->v6 ? m.nodes6 : m.nodes) AddCandidate(*lookup, n);
    if (lookup->get_peers && !m.values.empty()) {
      Event e;
      e.kind = Event::Kind::kPeers;
      e.v6 = lookup->v6;
      e.lookup = lookup->id;
      e.info_hash = lookup->target;
      for (const PeerAddress& a : m.values) {
        if (lookup->peers_seen.size() >= config_.max_peers_seen) break;
        if (lookup->peers_seen.insert(a).second) e.peers.push_back(a);
      }
      if (!e.peers.empty()) events_.push_back(std::move(e));
    }
  }
  Step(*lookup, now);
}

void Node::SeedSelfLookup(bool v6, const std::vector<NodeInfo>& nodes, Instant now) {
  if (v6 && !config_.ipv6) return;
  uint64_t& self = self_lookup_[v6 ? 1 : 0];
  if (self == 0 || !lookups_.contains(self)) {
    self = StartLookup(id_, false, 0, v6, now, &nodes);
    return;
  }
  if (auto l = lookups_.find(self); l != lookups_.end()) {
    for (const NodeInfo& n : nodes) AddCandidate(*l->second, n);
    Step(*l->second, now);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

bool Node::SendQuery(const PeerAddress& to, const NodeId* id, Method method, uint64_t lookup,
                     const NodeId& target, std::string_view token, uint16_t port, Instant now) {
  if (pending_.size() >= config_.max_outstanding || (to.v6 && !config_.ipv6)) return false;
  uint16_t tid = next_tid_++;
  while (pending_.contains(tid)) tid = next_tid_++;
  const std::string t = TidBytes(tid);
  std::string out;
  switch (method) {
    case Method::kPing:
      EncodePing(t, id_, &out);
      break;
    case Method::kFindNode:
      EncodeFindNode(t, id_, target, &out, WantFor(to.v6));
      break;
    case Method::kGetPeers:
      EncodeGetPeers(t, id_, target, &out, WantFor(to.v6));
      break;
    case Method::kAnnouncePeer:
      EncodeAnnouncePeer(t, id_, target, port, token, &out);
      break;
    case Method::kUnknown:
      return false;
  }
  Pending p;
  p.to = to;
  if (id != nullptr) {
    p.id = *id;
    p.id_known = true;
  }
  p.method = method;
  p.lookup = lookup;
  p.deadline = Instant{now.ms + config_.query_timeout_ms};
  pending_.emplace(tid, p);
  ++stats_.queries_out;
  out_.push_back(Outgoing{to, std::move(out)});
  return true;
}

void Node::AddBootstrap(const PeerAddress& addr, Instant now) {
  if (addr.port == 0) return;
  if (std::find(bootstrap_.begin(), bootstrap_.end(), addr) == bootstrap_.end()) {
    bootstrap_.push_back(addr);
  }
  last_bootstrap_ = now;
  SendQuery(addr, nullptr, Method::kFindNode, 0, id_, {}, 0, now);
}

void Node::AddSavedNode(const NodeInfo& node, Instant now) {
  if (node.addr.port == 0 || node.id == id_) return;
  SendQuery(node.addr, &node.id, Method::kPing, 0, {}, {}, 0, now);
}

uint64_t Node::GetPeers(const InfoHash& info_hash, uint16_t announce_port, Instant now) {
  const bool v6 = config_.ipv6 && table6_.size() > 0;
  const bool v4 = table_.size() > 0 || !v6;
  if (lookups_.size() + v4 + v6 > static_cast<size_t>(config_.max_lookups)) return 0;
  uint64_t first = 0;
  if (v4) first = StartLookup(info_hash, true, announce_port, false, now);
  if (v6) {
    const uint64_t id = StartLookup(info_hash, true, announce_port, true, now);
    if (first == 0) first = id;
  }
  return first;
}

uint64_t Node::FindNode(const NodeId& target, Instant now, bool v6) {
  return StartLookup(target, false, 0, v6, now);
}

uint64_t Node::StartLookup(const NodeId& target, bool get_peers, uint16_t port, bool v6,
                           Instant now, const std::vector<NodeInfo>* extra) {
  if (lookups_.size() >= static_cast<size_t>(config_.max_lookups)) return 0;
  auto l = std::make_unique<Lookup>();
  l->id = next_lookup_++;
  l->target = target;
  l->get_peers = get_peers;
  l->v6 = v6;
  l->announce_port = port;
  for (const NodeInfo& n : TableFor(v6).Closest(target, config_.max_candidates / 4)) {
    AddCandidate(*l, n);
  }
  if (extra != nullptr) {
    for (const NodeInfo& n : *extra) AddCandidate(*l, n);
  }
  Lookup& ref = *l;
  lookups_.emplace(ref.id, std::move(l));
  const uint64_t id = ref.id;
  Step(ref, now);
  return id;
}

void Node::AddCandidate(Lookup& l, const NodeInfo& node) {
  if (node.id == id_ || node.addr.port == 0 || node.addr.v6 != l.v6) return;
  for (const Candidate& c : l.candidates) {
    if (c.node.id == node.id || c.node.addr == node.addr) return;
  }
  auto pos = std::upper_bound(
      l.candidates.begin(), l.candidates.end(), node,
      [&](const NodeInfo& n, const Candidate& c) { return CloserTo(l.target, n.id, c.node.id); });
  if (static_cast<size_t>(pos - l.candidates.begin()) >= config_.max_candidates) return;
  l.candidates.insert(pos, Candidate{node, Candidate::State::kNew, {}});
  if (l.candidates.size() > config_.max_candidates &&
      l.candidates.back().state != Candidate::State::kInFlight) {
    l.candidates.pop_back();
  }
}

void Node::Step(Lookup& l, Instant now) {
  const Method method = l.get_peers ? Method::kGetPeers : Method::kFindNode;
  int considered = 0;
  bool blocked = false;
  for (Candidate& c : l.candidates) {
    if (l.in_flight >= config_.alpha) break;
    if (c.state == Candidate::State::kFailed) continue;
    if (considered++ >= config_.k) break;
    if (c.state != Candidate::State::kNew) continue;
    if (!SendQuery(c.node.addr, &c.node.id, method, l.id, l.target, {}, 0, now)) {
      blocked = true;  // too much outstanding: the next tick tries again
      break;
    }
    c.state = Candidate::State::kInFlight;
    ++l.in_flight;
  }
  if (l.in_flight == 0 && !blocked) Finish(l.id, now);
}

void Node::Finish(uint64_t lookup, Instant now) {
  auto it = lookups_.find(lookup);
  if (it == lookups_.end()) return;
  std::unique_ptr<Lookup> l = std::move(it->second);
  lookups_.erase(it);
  for (uint64_t& self : self_lookup_) {
    if (lookup == self) self = 0;
  }
  Event e;
  e.kind = Event::Kind::kLookupDone;
  e.lookup = l->id;
  e.info_hash = l->target;
  e.responded = l->responded;
  e.v6 = l->v6;
  if (l->get_peers && l->announce_port != 0) {
    for (const Candidate& c : l->candidates) {
      if (e.announced >= config_.k) break;
      if (c.state != Candidate::State::kAnswered || c.token.empty()) continue;
      if (SendQuery(c.node.addr, &c.node.id, Method::kAnnouncePeer, 0, l->target, c.token,
                    l->announce_port, now)) {
        ++e.announced;
      }
    }
  }
  events_.push_back(std::move(e));
}

// ---------------------------------------------------------------------------------------------
// Time

void Node::Timeouts(Instant now) {
  std::vector<std::pair<uint16_t, Pending>> expired;
  for (const auto& [tid, p] : pending_) {
    if (p.deadline <= now) expired.emplace_back(tid, p);
  }
  for (const auto& [tid, p] : expired) {
    pending_.erase(tid);
    if (p.verify) verifying_.erase(p.to);
    ++stats_.timeouts;
    if (p.id_known) TableFor(p.to.v6).Failed(NodeInfo{p.id, p.to});
    if (p.lookup == 0) continue;
    auto l = lookups_.find(p.lookup);
    if (l == lookups_.end()) continue;
    for (Candidate& c : l->second->candidates) {
      if (c.node.addr == p.to && c.state == Candidate::State::kInFlight) {
        c.state = Candidate::State::kFailed;
        --l->second->in_flight;
        break;
      }
    }
  }
  // Lookups whose queries were blocked (or whose answers arrived) continue here.
  std::vector<uint64_t> ids;
  ids.reserve(lookups_.size());
  for (const auto& [id, l] : lookups_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto l = lookups_.find(id);
    if (l != lookups_.end() && l->second->in_flight < config_.alpha) Step(*l->second, now);
  }
}

NodeId Node::RandomId() {
  NodeId id;
  for (size_t i = 0; i < id.size(); i += 8) {
    const uint64_t r = rng_();
    for (size_t j = 0; j < 8 && i + j < id.size(); ++j)
      id[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  return id;
}

void Node::Maintain(Instant now) {
  if (now.ms - secret_since_.ms >= config_.token_rotate_ms) {
    previous_secret_ = secret_;
    secret_ = rng_();
    secret_since_ = now;
  }
  if (now.ms - last_expire_.ms >= kExpireEveryMs) {
    last_expire_ = now;
    for (auto it = store_.begin(); it != store_.end();) {
      std::vector<StoredPeer>& peers = it->second;
      peers.erase(std::remove_if(peers.begin(), peers.end(),
                                 [&](const StoredPeer& p) {
                                   return now.ms - p.added.ms >= config_.peer_ttl_ms;
                                 }),
                  peers.end());
      if (peers.empty()) {
        store_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  // A router is asked again while the table of its family is empty.
  if (!bootstrap_.empty() && now.ms - last_bootstrap_.ms >= config_.bootstrap_retry_ms) {
    last_bootstrap_ = now;
    for (const PeerAddress& a : bootstrap_) {
      if (TableFor(a.v6).size() == 0) SendQuery(a, nullptr, Method::kFindNode, 0, id_, {}, 0, now);
    }
  }
  for (const bool v6 : {false, true}) {
    RoutingTable& table = TableFor(v6);
    for (const NodeInfo& n : table.StaleNodes(now, kRepingMs, kPingsPerRound)) {
      table.MarkPinged(n, now);
      SendQuery(n.addr, &n.id, Method::kPing, 0, {}, {}, 0, now);
    }
    if (lookups_.size() < static_cast<size_t>(config_.max_lookups)) {
      if (std::optional<NodeId> target = table.NextRefresh(now, RandomId()); target.has_value()) {
        FindNode(*target, now, v6);
      }
    }
  }
}

void Node::HandleTick(Instant now) {
  Timeouts(now);
  if (now.ms - last_maintenance_.ms >= kMaintenanceMs) {
    last_maintenance_ = now;
    Maintain(now);
  }
}

Instant Node::NextTimeout() const {
  Instant next{last_maintenance_.ms + kMaintenanceMs};
  for (const auto& [tid, p] : pending_) {
    if (p.deadline < next) next = p.deadline;
  }
  return next;
}

void Node::TakeOutgoing(std::vector<Outgoing>* out) {
  out->clear();
  out->swap(out_);
}

void Node::TakeEvents(std::vector<Event>* out) {
  out->clear();
  out->swap(events_);
}

void Node::Log(std::string text) {
  Event e;
  e.kind = Event::Kind::kLog;
  e.text = std::move(text);
  events_.push_back(std::move(e));
}

}  // namespace torrenty::engine::dht
