// The coordinator's side of rate limits: engine::RateAllocator splits the session's and each
// torrent's limits over the shards every tick (250 ms) from what each shard used and whether it
// ran short; each shard applies its shares to its own engine::ShardRateLimiter and answers with
// its usage, so no byte ever waits on a lock or an atomic shared between shards.
#include <algorithm>

#include "io/session/coordinator.h"

namespace torrenty::io {

using engine::Direction;
using engine::Instant;

void Coordinator::SetGlobalRateLimit(Direction direction, int64_t rate) {
  rates_.SetGlobalLimit(direction, rate);
}

void Coordinator::ApplyTorrentRateLimits(const TorrentEntry& e) {
  rates_.SetTorrentLimit(e.id, Direction::kDown, e.download_limited ? e.download_limit : 0);
  rates_.SetTorrentLimit(e.id, Direction::kUp, e.upload_limited ? e.upload_limit : 0);
  rates_.SetHonorsSessionLimits(e.id, e.honors_session_limits);
}

void Coordinator::RebalanceRates(Instant now) {
  const bool limited = rates_.limited();
  // Without limits nothing is sent; after the last one is lifted, one round of zero shares
  // clears the shards' buckets.
  if (!limited && !rates_sent_) return;
  const int64_t period_ms = std::max<int64_t>(now.ms - last_rebalance_.ms, 1);
  last_rebalance_ = now;
  std::vector<engine::ShardShares> shares = rates_.Rebalance(rate_usage_, period_ms);
  for (engine::ShardUsage& u : rate_usage_) u = {};
  for (size_t i = 0; i < shares.size() && i < env_.inboxes.size(); ++i) {
    ShardMessage m;
    m.type = ShardMessage::Type::kRateShares;
    m.shares = std::move(shares[i]);
    env_.inboxes[i]->Post(std::move(m));
  }
  rates_sent_ = limited;
}

}  // namespace torrenty::io
