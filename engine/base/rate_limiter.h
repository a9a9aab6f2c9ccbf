// Rate limits, sans-I/O (fed time): a token bucket, and the session-wide split of a global limit
// and per-torrent limits over N shards.
//
// Each shard owns a ShardRateLimiter: its share of the global bucket of each direction and of
// each limited torrent's buckets, touched only by that shard's thread, so a byte is admitted
// without a lock or an atomic. The coordinator owns the RateAllocator and re-splits every limit
// each period (a second, or less) from what each shard used and whether it ran short, and sends
// the new shares to the shards as messages. A period of 250 ms keeps the shortfall small: the
// first period splits equally, and a shard whose demand appears waits one period for its share
// (over 10 s of greedy transfers on 4 uneven shards the tests deliver within 2% of the limit).
//
// Why re-balance instead of rate/N per shard: a torrent's connections are spread over the
// shards by a hash of the peer's address, so a torrent with few peers has them on one or two
// shards; with rate/N each it would get only a fraction of its limit. The allocator gives each
// shard what it used (plus headroom) when it did not run short, and splits the rest equally among
// the shards that did (max-min fairness, water-filling). The shares always add up to the limit,
// so the limit holds whatever the split; a shard whose demand appears gets a share at the next
// re-balance. A small floor keeps every shard able to start.
//
// A limit of 0 means unlimited, and costs nothing: no bucket exists, and a request is granted in
// full after one branch.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine {

enum class Direction : uint8_t { kDown = 0, kUp = 1 };

class TokenBucket {
 public:
  static constexpr Instant kNever{std::numeric_limits<int64_t>::max()};

  // Unlimited.
  TokenBucket() = default;
  // `rate` bytes per second (0: unlimited), holding at most `burst` bytes (at least 1). Starts
  // empty at `now`, so a fresh limit does not begin with a burst.
  TokenBucket(int64_t rate, int64_t burst, Instant now);

  bool unlimited() const { return rate_ == 0; }
  int64_t rate() const { return rate_; }
  int64_t burst() const { return burst_; }

  // Changes the rate and burst, keeping the tokens (capped to the new burst) gathered so far at
  // the old rate. From unlimited to limited starts empty.
  void SetRate(int64_t rate, int64_t burst, Instant now);

  // Bytes that may be taken at `now` (int64 max when unlimited).
  int64_t Available(Instant now);
  // Takes up to `n` bytes; returns how many were granted (`n` when unlimited).
  int64_t Consume(int64_t n, Instant now);
  // Takes `n` bytes that already went (protocol overhead, bytes the kernel had buffered): the
  // bucket may go into debt, which later refills pay off.
  void Charge(int64_t n, Instant now);
  // Gives back `n` bytes taken by Consume that did not move (a short read or send), up to the
  // burst.
  void Refund(int64_t n, Instant now);
  // When min(n, burst) bytes will be available: `now` if they are, else the first ms they will be.
  Instant NextRefill(int64_t n, Instant now) const;

 private:
  // Tokens after refilling to `now`, in milli-bytes (bytes·1000), so refills at any rate in
  // whole ms lose nothing to rounding.
  int64_t TokensAt(Instant now) const;
  void Refill(Instant now);

  int64_t rate_ = 0;
  int64_t burst_ = 0;
  int64_t milli_tokens_ = 0;
  int64_t last_ms_ = 0;
};

// What one bucket of one shard did during a period.
struct BucketUsage {
  int64_t used = 0;
  // A request was granted less than it asked for: the shard would have used more.
  bool throttled = false;
};

// A shard's report for one period, for RateAllocator::Rebalance.
struct ShardUsage {
  std::array<BucketUsage, 2> global{};  // by Direction
  // Limited torrents only.
  absl::flat_hash_map<uint64_t, std::array<BucketUsage, 2>> torrents;
};

// New shares for one shard. `global[d]` and each torrent's rate: bytes/s, 0 = unlimited.
struct ShardShares {
  std::array<int64_t, 2> global{};
  struct Torrent {
    uint64_t torrent = 0;
    Direction direction = Direction::kDown;
    int64_t rate = 0;
  };
  // Only the torrent buckets whose share changed since the previous Rebalance.
  std::vector<Torrent> torrents;
  // Every torrent that ignores the session's limits (rpc-spec honorsSessionLimits false), in
  // full each time: the list is short, and a shard that missed nothing needs no history.
  std::vector<uint64_t> session_exempt;
};

// Splits `rate` (limited, > 0) over shards by their usage in the last `period_ms`: each shard
// gets a floor of rate/1000/N (at least 1 byte/s); then, water-filling, shards that were not
// throttled get what they used per second plus a quarter (capped at the fair share), and the
// throttled ones split what is left equally. Whatever no one needs is spread equally, so the
// result adds up to `rate` exactly.
std::vector<int64_t> SplitRate(int64_t rate, absl::Span<const BucketUsage> usage,
                               int64_t period_ms);

class ShardRateLimiter {
 public:
  // A bucket's burst: this much time at its rate, and never less than one block.
  static constexpr int64_t kBurstMs = 250;
  static constexpr int64_t kMinBurst = kBlockSize;
  static int64_t BurstFor(int64_t rate);

  // Bytes that `torrent` may move in `direction` now, at most `n`: what fits both the torrent's
  // share and the global share (only its own share for a torrent exempt from the session's
  // limits). Granted bytes are taken from both.
  int64_t Request(uint64_t torrent, Direction direction, int64_t n, Instant now) {
    if (limited_[static_cast<int>(direction)] == 0) return n;
    return RequestLimited(torrent, direction, n, now);
  }
  // Bytes that moved without asking (see TokenBucket::Charge).
  void Charge(uint64_t torrent, Direction direction, int64_t n, Instant now);
  // Granted bytes that did not move after all (see TokenBucket::Refund).
  void Refund(uint64_t torrent, Direction direction, int64_t n, Instant now);
  // Whether any bucket limits `direction` on this shard: when not, Request grants everything.
  bool limited(Direction direction) const { return limited_[static_cast<int>(direction)] != 0; }
  // When a Request for min(n, burst) bytes can next be granted in full: `now` if it can.
  Instant NextRefill(uint64_t torrent, Direction direction, int64_t n, Instant now) const;

  // Applies shares from RateAllocator::Rebalance. A torrent's rate of 0 removes its bucket.
  void Apply(const ShardShares& shares, Instant now);
  // Forgets a torrent's buckets.
  void RemoveTorrent(uint64_t torrent);
  // Usage since the previous call, for RateAllocator::Rebalance.
  ShardUsage TakeUsage();

 private:
  struct Buckets {
    std::array<TokenBucket, 2> bucket;
    std::array<BucketUsage, 2> usage;
  };
  int64_t RequestLimited(uint64_t torrent, Direction direction, int64_t n, Instant now);
  void Recount();
  // The session's bucket for `torrent`, or null when the torrent is exempt from it.
  TokenBucket* GlobalFor(uint64_t torrent, int d) {
    return exempt_.contains(torrent) ? nullptr : &global_[d];
  }
  const TokenBucket* GlobalFor(uint64_t torrent, int d) const {
    return exempt_.contains(torrent) ? nullptr : &global_[d];
  }

  std::array<TokenBucket, 2> global_;
  std::array<BucketUsage, 2> global_usage_{};
  absl::flat_hash_map<uint64_t, Buckets> torrents_;
  absl::flat_hash_set<uint64_t> exempt_;  // torrents that ignore the global buckets
  // Per direction: 0 when neither the global share nor any torrent is limited.
  std::array<int, 2> limited_{};
};

// The coordinator's side: the configured limits, split over `shards` each period.
class RateAllocator {
 public:
  explicit RateAllocator(int shards);

  int shards() const { return shards_; }
  // Some limit is set, or a lifted one has not yet been sent to the shards by Rebalance: the
  // owner keeps re-balancing while this holds, and once more after it stops holding.
  bool limited() const;
  // Bytes/s, 0 = unlimited. Takes effect at the next Rebalance.
  void SetGlobalLimit(Direction direction, int64_t rate);
  void SetTorrentLimit(uint64_t torrent, Direction direction, int64_t rate);
  // Whether `torrent` counts against the session's limits (Transmission's honorsSessionLimits,
  // true unless set); a torrent that does not is held only by its own limits.
  void SetHonorsSessionLimits(uint64_t torrent, bool honors);
  // Forgets a torrent; the session also calls ShardRateLimiter::RemoveTorrent on each shard.
  void RemoveTorrent(uint64_t torrent);

  // `usage` holds one report per shard (ShardRateLimiter::TakeUsage) covering `period_ms`;
  // returns the shares to Apply on each shard. The first call, with no usage yet, splits
  // equally.
  std::vector<ShardShares> Rebalance(absl::Span<const ShardUsage> usage, int64_t period_ms);

 private:
  struct Limit {
    int64_t rate = 0;
    std::vector<int64_t> last;  // The shares sent last time, by shard.
  };

  int shards_;
  std::array<int64_t, 2> global_{};
  // Limited torrents, and lifted limits until the next Rebalance has told the shards.
  absl::flat_hash_map<uint64_t, std::array<Limit, 2>> torrents_;
  absl::flat_hash_set<uint64_t> exempt_;
};

}  // namespace torrenty::engine
