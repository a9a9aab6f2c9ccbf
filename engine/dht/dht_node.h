// A BEP 5 DHT node, sans-I/O: io/ feeds it datagrams (with their source address) and time, and
// drains the datagrams it wants sent and the events it reports. It answers ping, find_node,
// get_peers and announce_peer (tokens from a secret rotated every 5 minutes, the previous one
// still accepted; a bounded peer store per info-hash), keeps the routing table, and runs
// iterative lookups: find_node for bootstrap and bucket refresh, get_peers (then announce_peer to
// the closest nodes that gave a token) for torrents. Incoming queries are rate limited per source
// address and overall, so a flood costs a bounded amount of CPU and no memory beyond the limits.
// BEP 32: IPv4 and IPv6 nodes live in separate routing tables (two DHTs under one node id);
// queries and answers follow "want", lookups and announces run once per family that has nodes.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "engine/base/types.h"
#include "engine/dht/krpc.h"
#include "engine/dht/node_id.h"
#include "engine/dht/routing_table.h"

namespace torrenty::engine::dht {

struct NodeConfig {
  int alpha = 3;  // queries in flight per lookup, 3..8
  int k = 8;      // the closest nodes a lookup converges on and announces to
  int64_t query_timeout_ms = 2000;
  int max_lookups = 16;
  size_t max_outstanding = 512;  // our queries awaiting an answer, over all lookups
  size_t max_candidates = 64;    // per lookup
  size_t max_peers_seen = 1000;  // per lookup, for de-duplication
  // Incoming queries per second, per source address (an IPv6 one by its /64) and overall (with
  // bursts).
  int per_ip_rate = 50, per_ip_burst = 100;
  int global_rate = 10000, global_burst = 10000;
  size_t max_tracked_ips = 4096;
  // Peer store (announce_peer from others).
  size_t max_peers_per_hash = 100;
  size_t max_hashes = 2000;
  int64_t peer_ttl_ms = 30 * 60 * 1000;
  size_t max_values_per_reply = 50;
  int64_t token_rotate_ms = 5 * 60 * 1000;
  // BEP 42: responders at public addresses whose id does not match enter no routing table.
  bool enforce_bep42 = true;
  int64_t bootstrap_retry_ms = 30'000;
  int64_t drop_log_every_ms = 10'000;
  // Distinct responders that must report the same public address before our id follows it.
  int external_ip_votes = 5;
  // Whether the node can send to IPv6 addresses (its socket is dual-stack).
  bool ipv6 = true;
};

struct Outgoing {
  PeerAddress to;
  std::string bytes;
};

struct Event {
  enum class Kind { kPeers, kLookupDone, kLog };
  Kind kind = Kind::kLog;
  uint64_t lookup = 0;
  InfoHash info_hash{};            // target of the lookup
  std::vector<PeerAddress> peers;  // kPeers: new peers found by a get_peers lookup
  int responded = 0;               // kLookupDone: nodes that answered
  int announced = 0;               // kLookupDone: announce_peer queries sent
  bool v6 = false;                 // kPeers, kLookupDone: the lookup ran over IPv6 nodes
  std::string text;                // kLog
};

class Node {
 public:
  struct Stats {
    uint64_t datagrams_in = 0;
    uint64_t malformed = 0;
    uint64_t queries_in = 0;
    uint64_t queries_dropped = 0;  // rate limited
    uint64_t responses_in = 0;
    uint64_t unexpected = 0;  // answers to nothing we asked
    uint64_t timeouts = 0;
    uint64_t queries_out = 0;
    uint64_t announces_stored = 0;
    uint64_t bad_tokens = 0;
  };

  // `seed` drives transaction ids, token secrets and refresh targets (fixed in tests).
  Node(const NodeId& id, NodeConfig config, uint64_t seed, Instant now);

  void HandleDatagram(const PeerAddress& from, std::string_view bytes, Instant now);
  void HandleTick(Instant now);
  // When HandleTick is next due (timeouts, maintenance).
  Instant NextTimeout() const;

  // Asks a router or known node for the nodes near our id; retried every 30 s while the table is
  // empty.
  void AddBootstrap(const PeerAddress& addr, Instant now);
  // A node saved from an earlier run: pinged, and added when it answers.
  void AddSavedNode(const NodeInfo& node, Instant now);
  // Starts a get_peers lookup in each family whose table has nodes (IPv4 when neither has);
  // peers come as kPeers events, each lookup's end as kLookupDone. With `announce_port` != 0
  // the closest nodes that gave a token get announce_peer for that port. Returns 0 (nothing
  // started) when there is no room for them under max_lookups, else the first lookup's id.
  uint64_t GetPeers(const InfoHash& info_hash, uint16_t announce_port, Instant now);
  uint64_t FindNode(const NodeId& target, Instant now, bool v6 = false);

  void TakeOutgoing(std::vector<Outgoing>* out);
  void TakeEvents(std::vector<Event>* out);

  const NodeId& id() const { return id_; }
  const RoutingTable& table() const { return table_; }    // IPv4 nodes
  const RoutingTable& table6() const { return table6_; }  // IPv6 nodes
  size_t nodes() const { return table_.size() + table6_.size(); }
  const Stats& stats() const { return stats_; }
  size_t lookups() const { return lookups_.size(); }
  size_t lookup_candidates() const;  // over all lookups
  size_t outstanding() const { return pending_.size(); }
  size_t stored_hashes() const { return store_.size(); }
  size_t stored_peers() const;
  size_t tracked_ips() const { return per_ip_.size(); }

  // Tokens: what we give an address now (its port ignored), and whether a token from it is
  // current or previous.
  std::string TokenFor(const PeerAddress& addr) const;
  bool TokenValid(const PeerAddress& addr, std::string_view token) const;
  std::string TokenFor(uint32_t ip) const { return TokenFor(PeerAddress{ip, 0}); }
  bool TokenValid(uint32_t ip, std::string_view token) const {
    return TokenValid(PeerAddress{ip, 0}, token);
  }

 private:
  struct Pending {
    PeerAddress to;
    NodeId id{};
    bool id_known = false;
    Method method = Method::kPing;
    uint64_t lookup = 0;
    Instant deadline{};
    bool verify = false;
  };
  struct Candidate {
    enum class State : uint8_t { kNew, kInFlight, kAnswered, kFailed };
    NodeInfo node;
    State state = State::kNew;
    std::string token;
  };
  struct Lookup {
    uint64_t id = 0;
    NodeId target{};
    bool get_peers = false;
    bool v6 = false;  // candidates are IPv6 nodes
    uint16_t announce_port = 0;
    std::vector<Candidate> candidates;  // closest first
    int in_flight = 0;
    int responded = 0;
    absl::flat_hash_set<PeerAddress> peers_seen;
  };
  struct QueryBucket {
    int64_t milli_tokens = 0;
    Instant last{};
  };
  struct StoredPeer {
    PeerAddress addr;
    Instant added{};
  };

  void HandleQuery(const PeerAddress& from, const Message& m, Instant now);
  void HandleReply(const PeerAddress& from, const Message& m, Instant now);
  bool AdmitQuery(const PeerAddress& from, Instant now);
  RoutingTable& TableFor(bool v6) { return v6 ? table6_ : table_; }
  // The nodes answering find_node/get_peers: the families `want` names, else the query's own.
  std::vector<NodeInfo> ClosestFor(const NodeId& target, uint8_t want, bool v6) const;
  // What our find_node/get_peers ask for: the other family too while its table is thin.
  uint8_t WantFor(bool v6) const;
  // Nodes of family `v6` from a bootstrap answer (or from the other family's answers while
  // that table is empty) feed the lookup of our own id there.
  void SeedSelfLookup(bool v6, const std::vector<NodeInfo>& nodes, Instant now);
  bool Take(QueryBucket& b, int rate, int burst, Instant now);
  void Heard(const NodeInfo& node, Instant now);
  // BEP 42: responders tell us our address ("ip"); once enough distinct ones agree on a public
  // address our id does not fit, the node takes an id derived from it.
  void VoteExternalIp(const PeerAddress& voter, const PeerAddress& ip, Instant now);
  // Sends a query; false when too many are outstanding.
  bool SendQuery(const PeerAddress& to, const NodeId* id, Method method, uint64_t lookup,
                 const NodeId& target, std::string_view token, uint16_t port, Instant now);
  void Reply(const PeerAddress& to, std::string&& bytes);
  // `extra`: candidates besides our table's closest (a bootstrap answer's nodes).
  uint64_t StartLookup(const NodeId& target, bool get_peers, uint16_t port, bool v6, Instant now,
                       const std::vector<NodeInfo>* extra = nullptr);
  void AddCandidate(Lookup& l, const NodeInfo& node);
  void Step(Lookup& l, Instant now);
  void Finish(uint64_t lookup, Instant now);
  void Timeouts(Instant now);
  void Maintain(Instant now);
  void Store(const InfoHash& info_hash, const PeerAddress& peer, Instant now);
  std::string TokenWith(uint64_t secret, const PeerAddress& addr) const;
  NodeId RandomId();
  void Log(std::string text);

  NodeId id_;
  NodeConfig config_;
  std::mt19937_64 rng_;
  RoutingTable table_;
  RoutingTable table6_;
  Stats stats_;

  absl::flat_hash_map<uint16_t, Pending> pending_;
  // Senders of queries we are pinging to learn whether they belong in the table.
  absl::flat_hash_set<PeerAddress> verifying_;
  uint16_t next_tid_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Lookup>> lookups_;
  uint64_t next_lookup_ = 1;
  uint64_t self_lookup_[2] = {0, 0};  // IPv4, IPv6

  uint64_t secret_, previous_secret_;
  Instant secret_since_{};

  QueryBucket global_;
  // By address (port 0; an IPv6 address by its /64, what one host usually has).
  absl::flat_hash_map<PeerAddress, QueryBucket> per_ip_;
  uint64_t dropped_since_log_ = 0;
  Instant last_drop_log_{INT64_MIN / 2};

  absl::flat_hash_map<InfoHash, std::vector<StoredPeer>> store_;
  Instant last_expire_{};

  absl::flat_hash_map<PeerAddress, int> ip_votes_;  // our address (port 0) -> distinct voters
  absl::flat_hash_set<PeerAddress> voters_;
  PeerAddress external_ip_;  // IPv4 (port 0 while unknown)
  bool has_external_ip4_ = false;
  PeerAddress external_ip6_;

  std::vector<PeerAddress> bootstrap_;
  Instant last_bootstrap_{};
  Instant last_maintenance_{};

  std::vector<Outgoing> out_;
  std::vector<Event> events_;
  std::string scratch_;
};

}  // namespace torrenty::engine::dht
