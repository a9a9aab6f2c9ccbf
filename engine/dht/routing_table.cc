#include "engine/dht/routing_table.h"

#include <algorithm>

namespace torrenty::engine::dht {

RoutingTable::RoutingTable(const NodeId& self, Instant now) : self_(self) {
  for (Bucket& b : buckets_) b.last_changed = now;
}

int RoutingTable::BucketIndex(const NodeId& id) const {
  return std::min(CommonPrefixBits(self_, id), kBuckets - 1);
}

RoutingTable::Status RoutingTable::StatusOf(const Entry& e, Instant now) const {
  if (e.failures >= kBadAfterFailures) return Status::kBad;
  if (e.answered && now.ms - e.last_response.ms < kGoodMs && e.failures == 0) return Status::kGood;
  return Status::kQuestionable;
}

RoutingTable::Entry* RoutingTable::Find(Bucket& b, const NodeInfo& node) {
  for (Entry& e : b.nodes) {
    if (e.node.id == node.id) return &e;
  }
  return nullptr;
}

bool RoutingTable::Contains(const NodeInfo& node) const {
  const Bucket& b = buckets_[BucketIndex(node.id)];
  return std::any_of(b.nodes.begin(), b.nodes.end(),
                     [&](const Entry& e) { return e.node == node; });
}

bool RoutingTable::HasRoomFor(const NodeId& id, Instant now) const {
  if (id == self_) return false;
  const Bucket& b = buckets_[BucketIndex(id)];
  if (b.nodes.size() < kBucketSize) return true;
  return std::any_of(b.nodes.begin(), b.nodes.end(),
                     [&](const Entry& e) { return StatusOf(e, now) == Status::kBad; });
}

std::optional<NodeInfo> RoutingTable::HeardResponse(const NodeInfo& node, Instant now) {
  if (node.id == self_) return std::nullopt;
  Bucket& b = buckets_[BucketIndex(node.id)];
  if (Entry* e = Find(b, node); e != nullptr) {
    // The same id from another address is someone else claiming it: keep the node we know.
    if (!(e->node.addr == node.addr)) return std::nullopt;
    e->last_response = now;
    e->failures = 0;
    e->answered = true;
    b.last_changed = now;
    return std::nullopt;
  }
  Entry fresh;
  fresh.node = node;
  fresh.last_response = now;
  fresh.answered = true;
  if (b.nodes.size() < kBucketSize) {
    b.nodes.push_back(fresh);
    ++size_;
    b.last_changed = now;
    return std::nullopt;
  }
  for (Entry& e : b.nodes) {
    if (StatusOf(e, now) == Status::kBad) {
      e = fresh;
      b.last_changed = now;
      return std::nullopt;
    }
  }
  auto r = std::find(b.replacements.begin(), b.replacements.end(), node);
  if (r != b.replacements.end()) b.replacements.erase(r);
  if (b.replacements.size() >= kBucketSize) b.replacements.erase(b.replacements.begin());
  b.replacements.push_back(node);
  const Entry* oldest = nullptr;
  for (const Entry& e : b.nodes) {
    if (StatusOf(e, now) != Status::kQuestionable) continue;
    if (oldest == nullptr || e.last_response < oldest->last_response) oldest = &e;
  }
  if (oldest == nullptr) return std::nullopt;
  return oldest->node;
}

void RoutingTable::HeardQuery(const NodeInfo& node, Instant now) {
  Bucket& b = buckets_[BucketIndex(node.id)];
  Entry* e = Find(b, node);
  if (e == nullptr || !(e->node.addr == node.addr) || !e->answered) return;
  e->last_response = now;
}

void RoutingTable::Failed(const NodeInfo& node) {
  Bucket& b = buckets_[BucketIndex(node.id)];
  auto it =
      std::find_if(b.nodes.begin(), b.nodes.end(), [&](const Entry& e) { return e.node == node; });
  if (it == b.nodes.end()) {
    auto r = std::find(b.replacements.begin(), b.replacements.end(), node);
    if (r != b.replacements.end()) b.replacements.erase(r);
    return;
  }
  ++it->failures;
  if (it->failures < kBadAfterFailures || b.replacements.empty()) return;
  // The newest replacement answered most recently.
  Entry fresh;
  fresh.node = b.replacements.back();
  b.replacements.pop_back();
  *it = fresh;
}

void RoutingTable::MarkPinged(const NodeInfo& node, Instant now) {
  Bucket& b = buckets_[BucketIndex(node.id)];
  if (Entry* e = Find(b, node); e != nullptr) e->last_pinged = now;
}

std::vector<NodeInfo> RoutingTable::Closest(const NodeId& target, size_t k) const {
  std::vector<NodeInfo> out;
  if (k == 0) return out;
  // Buckets nearest the target's bucket hold the closest nodes; gathering every usable node is
  // at most 1,280 entries and keeps this simple and exact.
  out.reserve(std::min<size_t>(size_, 256));
  for (const Bucket& b : buckets_) {
    for (const Entry& e : b.nodes) {
      if (e.failures >= kBadAfterFailures) continue;
      out.push_back(e.node);
    }
  }
  const size_t n = std::min(k, out.size());
  std::partial_sort(
      out.begin(), out.begin() + n, out.end(),
      [&](const NodeInfo& a, const NodeInfo& b) { return CloserTo(target, a.id, b.id); });
  out.resize(n);
  return out;
}

std::vector<NodeInfo> RoutingTable::GoodNodes(Instant now) const {
  std::vector<NodeInfo> out;
  for (const Bucket& b : buckets_) {
    for (const Entry& e : b.nodes) {
      if (StatusOf(e, now) == Status::kGood) out.push_back(e.node);
    }
  }
  return out;
}

std::optional<NodeId> RoutingTable::NextRefresh(Instant now, const NodeId& random) {
  int deepest = -1;
  for (int i = 0; i < kBuckets; ++i) {
    if (!buckets_[i].nodes.empty()) deepest = i;
  }
  if (deepest < 0) return std::nullopt;
  const int last = std::min(deepest + 1, kBuckets - 1);
  for (int i = 0; i <= last; ++i) {
    Bucket& b = buckets_[i];
    if (now.ms - b.last_changed.ms < kRefreshMs) continue;
    b.last_changed = now;
    // Our first i bits, bit i flipped, the rest random: an id that falls into bucket i.
    NodeId target = random;
    for (int bit = 0; bit <= i && bit < 160; ++bit) {
      const uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
      const bool ours = (self_[bit / 8] & mask) != 0;
      const bool want = bit == i ? !ours : ours;
      if (want) {
        target[bit / 8] |= mask;
      } else {
        target[bit / 8] &= static_cast<uint8_t>(~mask);
      }
    }
    return target;
  }
  return std::nullopt;
}

std::vector<NodeInfo> RoutingTable::StaleNodes(Instant now, int64_t ping_every_ms,
                                               size_t max) const {
  std::vector<const Entry*> stale;
  for (const Bucket& b : buckets_) {
    for (const Entry& e : b.nodes) {
      if (StatusOf(e, now) == Status::kGood) continue;
      if (now.ms - e.last_pinged.ms < ping_every_ms) continue;
      stale.push_back(&e);
    }
  }
  std::sort(stale.begin(), stale.end(),
            [](const Entry* a, const Entry* b) { return a->last_response < b->last_response; });
  std::vector<NodeInfo> out;
  for (size_t i = 0; i < stale.size() && i < max; ++i) out.push_back(stale[i]->node);
  return out;
}

size_t RoutingTable::replacements() const {
  size_t n = 0;
  for (const Bucket& b : buckets_) n += b.replacements.size();
  return n;
}

}  // namespace torrenty::engine::dht
