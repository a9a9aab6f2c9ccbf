// The Kademlia routing table of BEP 5: 160 buckets by the number of leading bits a node's id
// shares with ours, at most 8 nodes each plus a replacement cache of 8. A node is good while it
// has answered us within the last 15 minutes, bad after 2 queries in a row went unanswered, and
// questionable otherwise. A full bucket takes a new node only in place of a bad one; when it
// holds questionable nodes the caller pings the oldest and the new node waits as a replacement.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/base/types.h"
#include "engine/dht/node_id.h"

namespace torrenty::engine::dht {

class RoutingTable {
 public:
  static constexpr int kBucketSize = 8;
  static constexpr int kBuckets = 160;
  static constexpr int64_t kGoodMs = 15 * 60 * 1000;
  static constexpr int kBadAfterFailures = 2;
  static constexpr int64_t kRefreshMs = 15 * 60 * 1000;

  struct Entry {
    NodeInfo node;
    Instant last_response{};  // when it last answered us (or queried us after answering once)
    Instant last_pinged{};
    int failures = 0;  // unanswered queries in a row
    bool answered = false;
  };
  enum class Status { kGood, kQuestionable, kBad };

  RoutingTable(const NodeId& self, Instant now);

  // `node` answered one of our queries (verified address) at `now`. Adds or refreshes it. When
  // its bucket is full of nodes that are not bad, returns the questionable node to ping (if any),
  // and keeps `node` as a replacement.
  std::optional<NodeInfo> HeardResponse(const NodeInfo& node, Instant now);
  // `node` sent us a query: refreshes a node we know; unknown nodes are not added (they have not
  // proved they answer), the caller may ping them.
  void HeardQuery(const NodeInfo& node, Instant now);
  // A query to `node` timed out.
  void Failed(const NodeInfo& node);
  // Whether `node` is in the table, and whether its bucket could take it now.
  bool Contains(const NodeInfo& node) const;
  bool HasRoomFor(const NodeId& id, Instant now) const;
  void MarkPinged(const NodeInfo& node, Instant now);

  // Up to `k` nodes (bad ones excluded) closest to `target`, closest first.
  std::vector<NodeInfo> Closest(const NodeId& target, size_t k) const;
  // Good nodes, for saving the table across runs.
  std::vector<NodeInfo> GoodNodes(Instant now) const;
  // A bucket not touched for 15 minutes (only buckets up to one past the deepest non-empty
  // one): returns a target id inside it, built from `random`, and marks it refreshed.
  std::optional<NodeId> NextRefresh(Instant now, const NodeId& random);
  // Questionable nodes last pinged more than `ms` ago, oldest first (at most `max`).
  std::vector<NodeInfo> StaleNodes(Instant now, int64_t ping_every_ms, size_t max) const;

  Status StatusOf(const Entry& e, Instant now) const;
  size_t size() const { return size_; }
  size_t replacements() const;
  const NodeId& self() const { return self_; }
  int BucketIndex(const NodeId& id) const;

 private:
  struct Bucket {
    std::vector<Entry> nodes;            // at most kBucketSize
    std::vector<NodeInfo> replacements;  // at most kBucketSize, newest last
    Instant last_changed{};
  };
  Entry* Find(Bucket& b, const NodeInfo& node);

  NodeId self_;
  std::array<Bucket, kBuckets> buckets_;
  size_t size_ = 0;
};

}  // namespace torrenty::engine::dht
