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

std::string IpString(uint32_t ip) {
  return absl::StrCat(ip >> 24, ".", (ip >> 16) & 255, ".", (ip >> 8) & 255, ".", ip & 255);
}

}  // namespace

Node::Node(const NodeId& id, NodeConfig config, uint64_t seed, Instant now)
    : id_(id), config_(config), rng_(seed), table_(id, now) {
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

std::string Node::TokenWith(uint64_t secret, uint32_t ip) const {
  uint8_t buf[12];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<uint8_t>(secret >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) buf[8 + i] = static_cast<uint8_t>(ip >> (24 - 8 * i));
  const Sha1Digest d = Sha1(absl::MakeConstSpan(buf, sizeof(buf)));
  return std::string(reinterpret_cast<const char*>(d.data()), 8);
}

std::string Node::TokenFor(uint32_t ip) const { return TokenWith(secret_, ip); }

bool Node::TokenValid(uint32_t ip, std::string_view token) const {
  return token == TokenWith(secret_, ip) || token == TokenWith(previous_secret_, ip);
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

bool Node::AdmitQuery(uint32_t ip, Instant now) {
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
                     IpString(ip), ")"));
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
  if (!AdmitQuery(from.ip, now)) return;
  std::string out;
  const NodeInfo sender{m.id, from};
  static const std::vector<NodeInfo> kNoNodes;
  static const std::vector<PeerAddress> kNoValues;
  switch (m.method) {
    case Method::kPing:
      EncodeResponse(m.transaction, id_, kNoNodes, {}, kNoValues, from, &out);
      break;
    case Method::kFindNode:
      EncodeResponse(m.transaction, id_, table_.Closest(m.target, config_.k), {}, kNoValues, from,
                     &out);
      break;
    case Method::kGetPeers: {
      std::vector<PeerAddress> values;
      if (auto it = store_.find(m.info_hash); it != store_.end()) {
        const std::vector<StoredPeer>& peers = it->second;
        const size_t n = std::min(peers.size(), config_.max_values_per_reply);
        const size_t start = peers.size() > n ? rng_() % peers.size() : 0;
        values.reserve(n);
        for (size_t i = 0; i < n; ++i) values.push_back(peers[(start + i) % peers.size()].addr);
      }
      EncodeResponse(m.transaction, id_, table_.Closest(m.info_hash, config_.k), TokenFor(from.ip),
                     values, from, &out);
      break;
    }
    case Method::kAnnouncePeer: {
      if (!TokenValid(from.ip, m.token)) {
        ++stats_.bad_tokens;
        EncodeError(m.transaction, 203, "bad token", &out);
        break;
      }
      Store(m.info_hash, PeerAddress{from.ip, m.implied_port ? from.port : m.port}, now);
      EncodeResponse(m.transaction, id_, kNoNodes, {}, kNoValues, from, &out);
      break;
    }
    case Method::kUnknown:
      EncodeError(m.transaction, 204, "method unknown", &out);
      break;
  }
  Reply(from, std::move(out));
  if (m.read_only || m.id == id_) return;
  if (table_.Contains(sender)) {
    table_.HeardQuery(sender, now);
  } else if (verifying_.size() < config_.max_outstanding / 2 && !verifying_.contains(from) &&
             table_.HasRoomFor(m.id, now) &&
             (!config_.enforce_bep42 || Bep42Valid(from.ip, m.id))) {
    // A node that queries us may belong in the table, but only an answer proves its address.
    if (SendQuery(from, &m.id, Method::kPing, 0, {}, {}, 0, now)) {
      pending_[static_cast<uint16_t>(next_tid_ - 1)].verify = true;
      verifying_.insert(from);
    }
  }
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
  if (config_.enforce_bep42 && !Bep42Valid(node.addr.ip, node.id)) return;
  std::optional<NodeInfo> ping = table_.HeardResponse(node, now);
  if (ping.has_value()) {
    table_.MarkPinged(*ping, now);
    SendQuery(ping->addr, &ping->id, Method::kPing, 0, {}, {}, 0, now);
  }
}

void Node::VoteExternalIp(uint32_t voter, uint32_t ip, Instant now) {
  if (!IsPublicIpv4(ip) || ip == external_ip_) return;
  // One vote per responding address, among a bounded set of candidates.
  if (voters_.size() >= 256 || ip_votes_.size() >= 16) {
    voters_.clear();
    ip_votes_.clear();
  }
  if (!voters_.insert(voter).second) return;
  if (++ip_votes_[ip] < config_.external_ip_votes) return;
  external_ip_ = ip;
  voters_.clear();
  ip_votes_.clear();
  if (Bep42Valid(ip, id_)) return;
  const NodeId fresh = Bep42Id(ip, static_cast<uint8_t>(rng_()), RandomId());
  const std::vector<NodeInfo> good = table_.GoodNodes(now);
  id_ = fresh;
  table_ = RoutingTable(id_, now);
  for (const NodeInfo& n : good) table_.HeardResponse(n, now);
  Log(absl::StrCat("dht: our address is ", IpString(ip), "; new node id from it (BEP 42)"));
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
  if (ok && m.has_ip) VoteExternalIp(from.ip, m.ip.ip, now);

  Lookup* lookup = nullptr;
  if (p.lookup != 0) {
    if (auto l = lookups_.find(p.lookup); l != lookups_.end()) lookup = l->second.get();
  }
  if (lookup == nullptr) {
    // A bootstrap answer seeds the lookup of our own id, which fills the table near us.
    if (ok && p.method == Method::kFindNode && !p.id_known) {
      if (self_lookup_ == 0 || !lookups_.contains(self_lookup_)) {
        self_lookup_ = StartLookup(id_, false, 0, now);
      }
      if (auto l = lookups_.find(self_lookup_); l != lookups_.end()) {
        for (const NodeInfo& n : m.nodes) AddCandidate(*l->second, n);
        Step(*l->second, now);
      }
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
    for (const NodeInfo& n : m.nodes) AddCandidate(*lookup, n);
    if (lookup->get_peers && !m.values.empty()) {
      Event e;
      e.kind = Event::Kind::kPeers;
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

// ---------------------------------------------------------------------------------------------
// Output

bool Node::SendQuery(const PeerAddress& to, const NodeId* id, Method method, uint64_t lookup,
                     const NodeId& target, std::string_view token, uint16_t port, Instant now) {
  if (pending_.size() >= config_.max_outstanding) return false;
  uint16_t tid = next_tid_++;
  while (pending_.contains(tid)) tid = next_tid_++;
  const std::string t = TidBytes(tid);
  std::string out;
  switch (method) {
    case Method::kPing:
      EncodePing(t, id_, &out);
      break;
    case Method::kFindNode:
      EncodeFindNode(t, id_, target, &out);
      break;
    case Method::kGetPeers:
      EncodeGetPeers(t, id_, target, &out);
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
  return StartLookup(info_hash, true, announce_port, now);
}

uint64_t Node::FindNode(const NodeId& target, Instant now) {
  return StartLookup(target, false, 0, now);
}

uint64_t Node::StartLookup(const NodeId& target, bool get_peers, uint16_t port, Instant now) {
  if (lookups_.size() >= static_cast<size_t>(config_.max_lookups)) return 0;
  auto l = std::make_unique<Lookup>();
  l->id = next_lookup_++;
  l->target = target;
  l->get_peers = get_peers;
  l->announce_port = port;
  for (const NodeInfo& n : table_.Closest(target, config_.max_candidates / 4)) AddCandidate(*l, n);
  Lookup& ref = *l;
  lookups_.emplace(ref.id, std::move(l));
  const uint64_t id = ref.id;
  Step(ref, now);
  return id;
}

void Node::AddCandidate(Lookup& l, const NodeInfo& node) {
  if (node.id == id_ || node.addr.port == 0) return;
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
  if (lookup == self_lookup_) self_lookup_ = 0;
  Event e;
  e.kind = Event::Kind::kLookupDone;
  e.lookup = l->id;
  e.info_hash = l->target;
  e.responded = l->responded;
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
    if (p.id_known) table_.Failed(NodeInfo{p.id, p.to});
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
  if (table_.size() == 0 && !bootstrap_.empty() &&
      now.ms - last_bootstrap_.ms >= config_.bootstrap_retry_ms) {
    last_bootstrap_ = now;
    for (const PeerAddress& a : bootstrap_)
      SendQuery(a, nullptr, Method::kFindNode, 0, id_, {}, 0, now);
  }
  for (const NodeInfo& n : table_.StaleNodes(now, kRepingMs, kPingsPerRound)) {
    table_.MarkPinged(n, now);
    SendQuery(n.addr, &n.id, Method::kPing, 0, {}, {}, 0, now);
  }
  if (lookups_.size() < static_cast<size_t>(config_.max_lookups)) {
    if (std::optional<NodeId> target = table_.NextRefresh(now, RandomId()); target.has_value()) {
      FindNode(*target, now);
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
