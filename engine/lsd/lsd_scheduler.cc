#include "engine/lsd/lsd_scheduler.h"

#include <algorithm>

namespace torrenty::engine::lsd {

LsdScheduler::LsdScheduler(Config config) : config_(std::move(config)) {
  config_.max_hashes_per_message =
      std::clamp<size_t>(config_.max_hashes_per_message, 1, kMaxInfoHashes);
}

void LsdScheduler::AddTorrent(uint64_t id, const InfoHash& info_hash, bool is_private,
                              Instant now) {
  if (is_private || by_id_.contains(id) || by_hash_.contains(info_hash)) return;
  by_id_[id] = Torrent{info_hash, now.ms};
  by_hash_[info_hash] = id;
  due_.emplace(now.ms, id);
}

void LsdScheduler::RemoveTorrent(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  due_.erase({it->second.due_ms, id});
  by_hash_.erase(it->second.info_hash);
  by_id_.erase(it);
  absl::erase_if(recent_, [id](const auto& kv) { return kv.first.torrent == id; });
}

Instant LsdScheduler::NextTimeout() const {
  if (due_.empty() || config_.port == 0) return kNever;
  const int64_t gap_end =
      last_sent_ms_ == INT64_MIN ? INT64_MIN : last_sent_ms_ + config_.min_gap_ms;
  return Instant{std::max(due_.begin()->first, gap_end)};
}

std::optional<std::string> LsdScheduler::Poll(Instant now) {
  if (config_.port == 0 || due_.empty() || due_.begin()->first > now.ms) return std::nullopt;
  if (last_sent_ms_ != INT64_MIN && now.ms - last_sent_ms_ < config_.min_gap_ms) {
    return std::nullopt;
  }
  LsdAnnounce a;
  a.host = config_.host;
  a.port = config_.port;
  a.cookie = config_.cookie;
  std::vector<uint64_t> sent;
  while (!due_.empty() && due_.begin()->first <= now.ms &&
         a.info_hashes.size() < config_.max_hashes_per_message) {
    const uint64_t id = due_.begin()->second;
    due_.erase(due_.begin());
    Torrent& t = by_id_[id];
    a.info_hashes.push_back(t.info_hash);
    t.due_ms = now.ms + config_.reannounce_ms;
    sent.push_back(id);
  }
  for (uint64_t id : sent) due_.emplace(by_id_[id].due_ms, id);
  last_sent_ms_ = now.ms;
  absl::StatusOr<std::string> out = EncodeLsdAnnounce(a);
  if (!out.ok()) return std::nullopt;  // only a host or cookie out of bounds in Config
  return std::move(*out);
}

absl::Status LsdScheduler::HandleDatagram(absl::Span<const uint8_t> datagram, uint32_t from_ip,
                                          Instant now, std::vector<Found>* found) {
  absl::StatusOr<LsdAnnounce> a = ParseLsdAnnounce(datagram);
  if (!a.ok()) return a.status();
  if (!config_.cookie.empty() && a->cookie == config_.cookie) return absl::OkStatus();
  // 0.0.0.0 (a sender without a source address) names no peer anyone could dial.
  if (from_ip == 0) return absl::OkStatus();
  for (const InfoHash& ih : a->info_hashes) {
    auto it = by_hash_.find(ih);
    if (it == by_hash_.end()) continue;
    const RecentKey key{it->second, PeerAddress{from_ip, a->port}};
    auto r = recent_.find(key);
    if (r != recent_.end() && now.ms - r->second < config_.peer_repeat_ms) continue;
    if (r == recent_.end() && recent_.size() >= config_.max_recent_peers) {
      absl::erase_if(recent_,
                     [&](const auto& kv) { return now.ms - kv.second >= config_.peer_repeat_ms; });
      // Still full of fresh entries: forget them all rather than grow (a repeat may then be
      // reported twice, which costs a redundant dial at most).
      if (recent_.size() >= config_.max_recent_peers) recent_.clear();
    }
    recent_[key] = now.ms;
    found->push_back(Found{it->second, key.peer});
  }
  return absl::OkStatus();
}

}  // namespace torrenty::engine::lsd
