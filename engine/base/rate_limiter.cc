// Token buckets and the split of limits over shards; see rate_limiter.h for the policy.
#include "engine/base/rate_limiter.h"

#include <algorithm>
#include <numeric>

namespace torrenty::engine {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// Charges beyond this are clamped so milli-tokens cannot overflow.
constexpr int64_t kMaxCharge = kInt64Max / 4000;

}  // namespace

TokenBucket::TokenBucket(int64_t rate, int64_t burst, Instant now)
    : rate_(std::max<int64_t>(rate, 0)), burst_(std::max<int64_t>(burst, 1)), last_ms_(now.ms) {}

void TokenBucket::SetRate(int64_t rate, int64_t burst, Instant now) {
  if (rate <= 0) {
    rate_ = 0;
    return;
  }
  if (unlimited()) {
    milli_tokens_ = 0;
    last_ms_ = now.ms;
  } else {
    Refill(now);
  }
  rate_ = rate;
  burst_ = std::min(std::max<int64_t>(burst, 1), kMaxCharge);
  milli_tokens_ = std::min(milli_tokens_, burst_ * 1000);
}

int64_t TokenBucket::TokensAt(Instant now) const {
  const int64_t cap = burst_ * 1000;
  const int64_t dt = now.ms - last_ms_;
  if (dt <= 0 || milli_tokens_ >= cap) return milli_tokens_;
  const int64_t need = cap - milli_tokens_;
  // Compared by division first: rate * dt could overflow after a long idle spell.
  if (dt >= need / rate_ + 1) return cap;
  return std::min(cap, milli_tokens_ + rate_ * dt);
}

void TokenBucket::Refill(Instant now) {
  milli_tokens_ = TokensAt(now);
  last_ms_ = std::max(last_ms_, now.ms);
}

int64_t TokenBucket::Available(Instant now) {
  if (unlimited()) return kInt64Max;
  Refill(now);
  return std::max<int64_t>(milli_tokens_ / 1000, 0);
}

int64_t TokenBucket::Consume(int64_t n, Instant now) {
  if (unlimited()) return n;
  if (n <= 0) return 0;
  const int64_t granted = std::min(n, Available(now));
  milli_tokens_ -= granted * 1000;
  return granted;
}

void TokenBucket::Charge(int64_t n, Instant now) {
  if (unlimited() || n <= 0) return;
  Refill(now);
  milli_tokens_ -= std::min(n, kMaxCharge) * 1000;
  // Debt is bounded, so a huge charge delays the bucket by a bounded time.
  milli_tokens_ = std::max(milli_tokens_, -kMaxCharge * 1000);
}

void TokenBucket::Refund(int64_t n, Instant now) {
  if (unlimited() || n <= 0) return;
  Refill(now);
  milli_tokens_ = std::min(milli_tokens_ + std::min(n, kMaxCharge) * 1000, burst_ * 1000);
}

Instant TokenBucket::NextRefill(int64_t n, Instant now) const {
  if (unlimited()) return now;
  const int64_t want = std::clamp<int64_t>(n, 0, burst_) * 1000;
  const int64_t have = TokensAt(now);
  if (have >= want) return now;
  const Instant from{std::max(now.ms, last_ms_)};
  return Instant{from.ms + (want - have + rate_ - 1) / rate_};
}

std::vector<int64_t> SplitRate(int64_t rate, absl::Span<const BucketUsage> usage,
                               int64_t period_ms) {
  const size_t n = usage.size();
  std::vector<int64_t> shares(n, 0);
  if (n == 0) return shares;
  const int64_t shards = static_cast<int64_t>(n);
  const int64_t floor = std::max<int64_t>(rate / 1000 / shards, 1);
  int64_t left = std::max<int64_t>(rate - floor * shards, 0);
  const int64_t period = std::max<int64_t>(period_ms, 1);
  // What each shard wants beyond its floor, bytes/s; throttled shards want all they can get.
  std::vector<int64_t> demand(n);
  for (size_t i = 0; i < n; ++i) {
    shares[i] = floor;
    if (usage[i].throttled) {
      demand[i] = kInt64Max;
    } else {
      const int64_t used = std::min(usage[i].used, kInt64Max / 1250);
      demand[i] = std::max<int64_t>(used * 1250 / period - floor, 0);
    }
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return demand[a] < demand[b]; });
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    const int64_t fair = left / static_cast<int64_t>(n - k);
    const int64_t give = std::min(demand[i], fair);
    shares[i] += give;
    left -= give;
  }
  // Nobody needs the rest now; spread it so any shard can grow into it.
  for (size_t i = 0; i < n; ++i) {
    const int64_t give = left / static_cast<int64_t>(n - i);
    shares[i] += give;
    left -= give;
  }
  return shares;
}

int64_t ShardRateLimiter::BurstFor(int64_t rate) {
  return std::max(rate / (1000 / kBurstMs), kMinBurst);
}

int64_t ShardRateLimiter::RequestLimited(uint64_t torrent, Direction direction, int64_t n,
                                         Instant now) {
  if (n <= 0) return 0;
  const int d = static_cast<int>(direction);
  int64_t granted = n;
  TokenBucket* global = GlobalFor(torrent, d);
  if (global != nullptr) {
    const int64_t global_available = global->Available(now);
    if (global_available < n) global_usage_[d].throttled = true;
    granted = std::min(granted, global_available);
  }
  Buckets* own = nullptr;
  if (auto it = torrents_.find(torrent);
      it != torrents_.end() && !it->second.bucket[d].unlimited()) {
    own = &it->second;
    const int64_t own_available = own->bucket[d].Available(now);
    if (own_available < n) own->usage[d].throttled = true;
    granted = std::min(granted, own_available);
  }
  if (granted <= 0) return 0;
  if (global != nullptr) {
    global->Consume(granted, now);
    global_usage_[d].used += granted;
  }
  if (own != nullptr) {
    own->bucket[d].Consume(granted, now);
    own->usage[d].used += granted;
  }
  return granted;
}

void ShardRateLimiter::Charge(uint64_t torrent, Direction direction, int64_t n, Instant now) {
  const int d = static_cast<int>(direction);
  if (limited_[d] == 0 || n <= 0) return;
  if (TokenBucket* global = GlobalFor(torrent, d); global != nullptr) {
    global->Charge(n, now);
    global_usage_[d].used += n;
  }
  if (auto it = torrents_.find(torrent); it != torrents_.end()) {
    it->second.bucket[d].Charge(n, now);
    it->second.usage[d].used += n;
  }
}

void ShardRateLimiter::Refund(uint64_t torrent, Direction direction, int64_t n, Instant now) {
  const int d = static_cast<int>(direction);
  if (limited_[d] == 0 || n <= 0) return;
  if (TokenBucket* global = GlobalFor(torrent, d); global != nullptr) {
    global->Refund(n, now);
    global_usage_[d].used = std::max<int64_t>(global_usage_[d].used - n, 0);
  }
  if (auto it = torrents_.find(torrent); it != torrents_.end()) {
    it->second.bucket[d].Refund(n, now);
    it->second.usage[d].used = std::max<int64_t>(it->second.usage[d].used - n, 0);
  }
}

Instant ShardRateLimiter::NextRefill(uint64_t torrent, Direction direction, int64_t n,
                                     Instant now) const {
  const int d = static_cast<int>(direction);
  if (limited_[d] == 0) return now;
  const TokenBucket* global = GlobalFor(torrent, d);
  Instant at = global != nullptr ? global->NextRefill(n, now) : now;
  if (auto it = torrents_.find(torrent); it != torrents_.end()) {
    at = std::max(at, it->second.bucket[d].NextRefill(n, now));
  }
  return at;
}

void ShardRateLimiter::Apply(const ShardShares& shares, Instant now) {
  for (int d = 0; d < 2; ++d) {
    const int64_t rate = shares.global[d];
    if (rate != global_[d].rate()) global_[d].SetRate(rate, BurstFor(rate), now);
  }
  for (const ShardShares::Torrent& t : shares.torrents) {
    const int d = static_cast<int>(t.direction);
    if (t.rate <= 0) {
      auto it = torrents_.find(t.torrent);
      if (it == torrents_.end()) continue;
      it->second.bucket[d].SetRate(0, 0, now);
      if (it->second.bucket[0].unlimited() && it->second.bucket[1].unlimited()) {
        torrents_.erase(it);
      }
      continue;
    }
    torrents_[t.torrent].bucket[d].SetRate(t.rate, BurstFor(t.rate), now);
  }
  exempt_.clear();
  exempt_.insert(shares.session_exempt.begin(), shares.session_exempt.end());
  Recount();
}

void ShardRateLimiter::RemoveTorrent(uint64_t torrent) {
  if (torrents_.erase(torrent) > 0) Recount();
}

void ShardRateLimiter::Recount() {
  for (int d = 0; d < 2; ++d) {
    limited_[d] = global_[d].unlimited() ? 0 : 1;
    for (const auto& [id, buckets] : torrents_) limited_[d] += !buckets.bucket[d].unlimited();
  }
}

ShardUsage ShardRateLimiter::TakeUsage() {
  ShardUsage usage;
  usage.global = global_usage_;
  global_usage_ = {};
  for (auto& [id, buckets] : torrents_) {
    usage.torrents[id] = buckets.usage;
    buckets.usage = {};
  }
  return usage;
}

RateAllocator::RateAllocator(int shards) : shards_(std::max(shards, 1)) {}

bool RateAllocator::limited() const {
  return global_[0] != 0 || global_[1] != 0 || !torrents_.empty();
}

void RateAllocator::SetGlobalLimit(Direction direction, int64_t rate) {
  global_[static_cast<int>(direction)] = std::max<int64_t>(rate, 0);
}

void RateAllocator::SetTorrentLimit(uint64_t torrent, Direction direction, int64_t rate) {
  rate = std::max<int64_t>(rate, 0);
  if (rate == 0 && !torrents_.contains(torrent)) return;
  torrents_[torrent][static_cast<int>(direction)].rate = rate;
}

void RateAllocator::SetHonorsSessionLimits(uint64_t torrent, bool honors) {
  if (honors) {
    exempt_.erase(torrent);
  } else {
    exempt_.insert(torrent);
  }
}

void RateAllocator::RemoveTorrent(uint64_t torrent) {
  torrents_.erase(torrent);
  exempt_.erase(torrent);
}

std::vector<ShardShares> RateAllocator::Rebalance(absl::Span<const ShardUsage> usage,
                                                  int64_t period_ms) {
  const size_t n = static_cast<size_t>(shards_);
  std::vector<ShardShares> out(n);
  std::vector<BucketUsage> column(n);
  auto usage_of = [&](size_t shard) -> const ShardUsage* {
    return shard < usage.size() ? &usage[shard] : nullptr;
  };
  for (int d = 0; d < 2; ++d) {
    if (global_[d] == 0) continue;
    for (size_t s = 0; s < n; ++s) {
      const ShardUsage* u = usage_of(s);
      column[s] = u != nullptr ? u->global[d] : BucketUsage{};
    }
    const std::vector<int64_t> shares = SplitRate(global_[d], column, period_ms);
    for (size_t s = 0; s < n; ++s) out[s].global[d] = shares[s];
  }
  for (auto it = torrents_.begin(); it != torrents_.end();) {
    bool any = false;
    for (int d = 0; d < 2; ++d) {
      Limit& limit = it->second[d];
      std::vector<int64_t> shares(n, 0);
      if (limit.rate > 0) {
        for (size_t s = 0; s < n; ++s) {
          const ShardUsage* u = usage_of(s);
          column[s] = BucketUsage{};
          if (u == nullptr) continue;
          if (auto t = u->torrents.find(it->first); t != u->torrents.end())
            column[s] = t->second[d];
        }
        shares = SplitRate(limit.rate, column, period_ms);
        any = true;
      } else if (limit.last.empty()) {
        continue;
      }
      limit.last.resize(n, 0);
      for (size_t s = 0; s < n; ++s) {
        if (shares[s] == limit.last[s]) continue;
        out[s].torrents.push_back(
            ShardShares::Torrent{it->first, static_cast<Direction>(d), shares[s]});
        limit.last[s] = shares[s];
      }
      if (limit.rate == 0) limit.last.clear();
    }
    // A torrent whose limits are all lifted has told its shards; forget it.
    if (!any) {
      torrents_.erase(it++);
    } else {
      ++it;
    }
  }
  if (!exempt_.empty()) {
    std::vector<uint64_t> exempt(exempt_.begin(), exempt_.end());
    std::sort(exempt.begin(), exempt.end());
    for (ShardShares& shares : out) shares.session_exempt = exempt;
  }
  return out;
}

}  // namespace torrenty::engine
