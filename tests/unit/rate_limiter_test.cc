// Tests for engine/base/rate_limiter.h: the token bucket, the split of a limit over shards, and
// global and per-torrent limits held over a simulated 10 s of greedy transfers on 4 shards.
#include "engine/base/rate_limiter.h"

#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

TEST(TokenBucketTest, RefillsAtTheRateUpToTheBurst) {
  TokenBucket b(1000, 500, Instant{10'000});
  EXPECT_FALSE(b.unlimited());
  EXPECT_EQ(b.Available(Instant{10'000}), 0);  // Starts empty.
  EXPECT_EQ(b.Available(Instant{10'100}), 100);
  EXPECT_EQ(b.Consume(300, Instant{10'100}), 100);
  EXPECT_EQ(b.Consume(300, Instant{10'100}), 0);
  EXPECT_EQ(b.NextRefill(200, Instant{10'100}), Instant{10'300});
  // At most one burst is ever available, however long it idled (and no overflow).
  EXPECT_EQ(b.Available(Instant{kMaxI64 / 2}), 500);
  EXPECT_EQ(b.NextRefill(10'000, Instant{kMaxI64 / 2}), Instant{kMaxI64 / 2});
}

TEST(TokenBucketTest, FractionalRatesLoseNothing) {
  // 7 bytes/s: one byte every 142.857 ms; 10 s must give exactly 70.
  TokenBucket b(7, 1000, Instant{0});
  int64_t got = 0;
  for (int64_t ms = 1; ms <= 10'000; ++ms) got += b.Consume(1000, Instant{ms});
  EXPECT_EQ(got, 70);
}

TEST(TokenBucketTest, ChargeGoesIntoDebt) {
  TokenBucket b(1000, 1000, Instant{0});
  b.Charge(1500, Instant{1000});  // 1000 available, 500 owed.
  EXPECT_EQ(b.Available(Instant{1000}), 0);
  EXPECT_EQ(b.NextRefill(100, Instant{1000}), Instant{1600});
  EXPECT_EQ(b.Available(Instant{1600}), 100);
  b.Charge(kMaxI64, Instant{1600});  // Clamped, no overflow.
  EXPECT_EQ(b.Available(Instant{1601}), 0);
}

TEST(TokenBucketTest, RefundGivesBackUpToTheBurst) {
  TokenBucket b(1000, 1000, Instant{0});
  EXPECT_EQ(b.Consume(800, Instant{1000}), 800);
  b.Refund(300, Instant{1000});  // A short read: 300 of the 800 did not move.
  EXPECT_EQ(b.Available(Instant{1000}), 500);
  b.Refund(5000, Instant{1000});
  EXPECT_EQ(b.Available(Instant{1000}), 1000);  // Never past the burst.
  b.Refund(kMaxI64, Instant{1000});             // Clamped, no overflow.
  EXPECT_EQ(b.Available(Instant{1000}), 1000);
}

TEST(TokenBucketTest, SetRateKeepsTokensAndUnlimitedPassesEverything) {
  TokenBucket b(1000, 1000, Instant{0});
  EXPECT_EQ(b.Available(Instant{400}), 400);
  b.SetRate(100, 200, Instant{500});  // 500 gathered at the old rate, capped to the new burst.
  EXPECT_EQ(b.Available(Instant{500}), 200);
  b.SetRate(0, 0, Instant{500});
  EXPECT_TRUE(b.unlimited());
  EXPECT_EQ(b.Consume(kMaxI64, Instant{500}), kMaxI64);
  EXPECT_EQ(b.NextRefill(kMaxI64, Instant{500}), Instant{500});
  b.SetRate(100, 200, Instant{600});  // Limited again: starts empty.
  EXPECT_EQ(b.Available(Instant{600}), 0);
  TokenBucket unlimited;
  EXPECT_EQ(unlimited.Consume(123, Instant{0}), 123);
  EXPECT_EQ(unlimited.Available(Instant{0}), kMaxI64);
}

TEST(TokenBucketTest, GreedyConsumerGetsTheRateOverTenSeconds) {
  TokenBucket b(1'000'000, ShardRateLimiter::BurstFor(1'000'000), Instant{0});
  int64_t got = 0;
  for (int64_t ms = 0; ms <= 10'000; ms += 7) got += b.Consume(1 << 20, Instant{ms});
  EXPECT_NEAR(static_cast<double>(got), 10e6, 10e6 * 0.01);
}

int64_t Sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), 0LL); }

TEST(SplitRateTest, ThrottledShardsShareWhatTheOthersDoNotUse) {
  // Shard 0 used 100 kB in 1 s without running short, shard 1 ran short, 2 and 3 were idle.
  std::vector<BucketUsage> usage = {{100'000, false}, {400'000, true}, {0, false}, {0, false}};
  std::vector<int64_t> shares = SplitRate(1'000'000, usage, 1000);
  EXPECT_EQ(Sum(shares), 1'000'000);
  EXPECT_NEAR(shares[0], 125'000, 1000);  // What it used, plus a quarter.
  EXPECT_GT(shares[1], 870'000);          // All the rest but the floors.
  EXPECT_LE(shares[2], 1'000);
  // Two throttled shards split equally.
  usage = {{500'000, true}, {10'000, true}, {0, false}, {0, false}};
  shares = SplitRate(1'000'000, usage, 1000);
  EXPECT_EQ(Sum(shares), 1'000'000);
  EXPECT_EQ(shares[0], shares[1]);
  // Nobody short, little used: the rest is spread so any shard can grow.
  usage = {{1000, false}, {0, false}, {0, false}, {0, false}};
  shares = SplitRate(1'000'000, usage, 1000);
  EXPECT_EQ(Sum(shares), 1'000'000);
  for (int64_t s : shares) EXPECT_GT(s, 200'000);
  // Tiny limits still give every shard a byte per second.
  shares = SplitRate(3, usage, 1000);
  for (int64_t s : shares) EXPECT_GE(s, 1);
}

// Four shards, each with its limiter, and the coordinator re-balancing every `period_ms`.
// Consumers are (shard, torrent) pairs that each ask for `want` bytes every ms.
struct Session {
  static constexpr int kShards = 4;
  RateAllocator allocator{kShards};
  std::vector<ShardRateLimiter> shards = std::vector<ShardRateLimiter>(kShards);
  struct Consumer {
    int shard;
    uint64_t torrent;
    int64_t want_per_ms = 1 << 20;
    int64_t got = 0;
  };
  std::vector<Consumer> consumers;

  // `start_ms`: where a second run continues the clock of the first.
  void Run(Direction d, int64_t duration_ms, int64_t period_ms, int64_t start_ms = 0) {
    std::vector<ShardShares> first = allocator.Rebalance({}, period_ms);
    for (int s = 0; s < kShards; ++s) shards[s].Apply(first[s], Instant{start_ms});
    for (int64_t ms = start_ms + 1; ms <= start_ms + duration_ms; ++ms) {
      for (Consumer& c : consumers) {
        c.got += shards[c.shard].Request(c.torrent, d, c.want_per_ms, Instant{ms});
      }
      if (ms % period_ms == 0) {
        std::vector<ShardUsage> usage;
        for (ShardRateLimiter& s : shards) usage.push_back(s.TakeUsage());
        std::vector<ShardShares> shares = allocator.Rebalance(usage, period_ms);
        for (int s = 0; s < kShards; ++s) shards[s].Apply(shares[s], Instant{ms});
      }
    }
  }
  int64_t Got(uint64_t torrent) const {
    int64_t got = 0;
    for (const Consumer& c : consumers) got += c.torrent == torrent ? c.got : 0;
    return got;
  }
  int64_t Total() const {
    int64_t got = 0;
    for (const Consumer& c : consumers) got += c.got;
    return got;
  }
};

class RateLimitTest : public ::testing::TestWithParam<Direction> {};

INSTANTIATE_TEST_SUITE_P(BothDirections, RateLimitTest,
                         ::testing::Values(Direction::kDown, Direction::kUp), [](const auto& info) {
                           return std::string(info.param == Direction::kDown ? "Down" : "Up");
                         });

constexpr double kTolerance = 0.03;

TEST_P(RateLimitTest, GlobalLimitHoldsWithUnevenShards) {
  Session s;
  s.allocator.SetGlobalLimit(GetParam(), 4'000'000);
  // Three torrents; most connections on shard 0, some on shard 1, none on 2 and 3.
  s.consumers = {{0, 1}, {0, 2}, {0, 3}, {1, 3}};
  s.Run(GetParam(), 10'000, 250);
  EXPECT_NEAR(static_cast<double>(s.Total()), 40e6, 40e6 * kTolerance);
}

TEST_P(RateLimitTest, TorrentLimitHoldsWhileOthersAreUnlimited) {
  Session s;
  s.allocator.SetTorrentLimit(7, GetParam(), 1'000'000);
  // Torrent 7 has peers on shards 0 and 1 only; torrent 8 (unlimited) everywhere.
  s.consumers = {{0, 7}, {1, 7}, {0, 8, 1000}, {1, 8, 1000}, {2, 8, 1000}, {3, 8, 1000}};
  s.Run(GetParam(), 10'000, 250);
  EXPECT_NEAR(static_cast<double>(s.Got(7)), 10e6, 10e6 * kTolerance);
  EXPECT_EQ(s.Got(8), 4 * 1000 * 10'000);  // Everything it asked for.
}

TEST_P(RateLimitTest, TorrentAndGlobalLimitsTogether) {
  Session s;
  s.allocator.SetGlobalLimit(GetParam(), 3'000'000);
  s.allocator.SetTorrentLimit(7, GetParam(), 1'000'000);
  s.consumers = {{0, 7}, {2, 8}, {3, 8}, {3, 9}};
  s.Run(GetParam(), 10'000, 250);
  EXPECT_NEAR(static_cast<double>(s.Got(7)), 10e6, 10e6 * kTolerance);
  EXPECT_NEAR(static_cast<double>(s.Total()), 30e6, 30e6 * kTolerance);
}

TEST_P(RateLimitTest, DemandBelowTheLimitIsNotThrottled) {
  Session s;
  s.allocator.SetGlobalLimit(GetParam(), 4'000'000);
  s.allocator.SetTorrentLimit(7, GetParam(), 1'000'000);
  // 500 kB/s of demand against a 1 MB/s torrent limit, on one shard.
  s.consumers = {{2, 7, 500}};
  s.Run(GetParam(), 10'000, 250);
  EXPECT_NEAR(static_cast<double>(s.Got(7)), 5e6, 5e6 * kTolerance);
}

TEST_P(RateLimitTest, LiftedLimitsPassEverything) {
  Session s;
  s.allocator.SetGlobalLimit(GetParam(), 1'000'000);
  s.allocator.SetTorrentLimit(7, GetParam(), 1'000'000);
  s.allocator.SetGlobalLimit(GetParam(), 0);
  s.allocator.SetTorrentLimit(7, GetParam(), 0);
  s.consumers = {{0, 7}, {1, 8}};
  s.Run(GetParam(), 1000, 250);
  EXPECT_EQ(s.Total(), 2 * 1000 * (1 << 20));
}

TEST_P(RateLimitTest, TorrentThatIgnoresSessionLimitsIsHeldOnlyByItsOwn) {
  Session s;
  s.allocator.SetGlobalLimit(GetParam(), 1'000'000);
  s.allocator.SetHonorsSessionLimits(8, false);
  s.allocator.SetTorrentLimit(9, GetParam(), 500'000);
  s.allocator.SetHonorsSessionLimits(9, false);
  s.consumers = {{0, 7}, {1, 8}, {2, 9}, {3, 7}};
  s.Run(GetParam(), 10'000, 250);
  // 7 gets the whole session limit; 8 is unlimited; 9 gets its own limit, not the session's.
  EXPECT_NEAR(s.Got(7), 10'000'000, 10'000'000 * kTolerance);
  EXPECT_EQ(s.Got(8), int64_t{10'000} * (1 << 20));
  EXPECT_NEAR(s.Got(9), 5'000'000, 5'000'000 * kTolerance);
  // Honouring the limits again puts it back under the session's bucket.
  s.allocator.SetHonorsSessionLimits(8, true);
  for (Session::Consumer& c : s.consumers) c.got = 0;
  s.Run(GetParam(), 10'000, 250, 10'000);
  EXPECT_NEAR(s.Got(7) + s.Got(8), 10'000'000, 10'000'000 * kTolerance);
}

TEST(ShardRateLimiterTest, UnlimitedPassesEverythingWithoutBuckets) {
  ShardRateLimiter shard;
  EXPECT_EQ(shard.Request(1, Direction::kDown, kMaxI64, Instant{0}), kMaxI64);
  EXPECT_EQ(shard.Request(1, Direction::kUp, 1, Instant{0}), 1);
  EXPECT_EQ(shard.NextRefill(1, Direction::kUp, 1 << 20, Instant{5}), Instant{5});
  shard.Charge(1, Direction::kUp, 1 << 20, Instant{5});
  ShardUsage usage = shard.TakeUsage();
  EXPECT_EQ(usage.global[0].used, 0);  // Nothing counted: nothing to split.
  EXPECT_TRUE(usage.torrents.empty());
}

TEST(ShardRateLimiterTest, TorrentLimitAppliesToThatTorrentOnly) {
  ShardRateLimiter shard;
  ShardShares shares;
  shares.torrents.push_back({1, Direction::kUp, 1000});
  shard.Apply(shares, Instant{0});
  EXPECT_EQ(shard.Request(1, Direction::kUp, 1 << 20, Instant{1000}), 1000);  // 1 s of refill.
  EXPECT_EQ(shard.Request(2, Direction::kUp, 1 << 20, Instant{1000}), 1 << 20);
  EXPECT_EQ(shard.Request(1, Direction::kDown, 1 << 20, Instant{1000}), 1 << 20);
  EXPECT_EQ(shard.NextRefill(1, Direction::kUp, 100, Instant{1000}), Instant{1100});
  ShardUsage usage = shard.TakeUsage();
  ASSERT_TRUE(usage.torrents.contains(1));
  EXPECT_EQ(usage.torrents[1][1].used, 1000);
  EXPECT_TRUE(usage.torrents[1][1].throttled);
  EXPECT_FALSE(usage.torrents[1][0].throttled);
  // Lifting it removes the bucket.
  shares.torrents = {{1, Direction::kUp, 0}};
  shard.Apply(shares, Instant{1000});
  EXPECT_EQ(shard.Request(1, Direction::kUp, 1 << 20, Instant{1000}), 1 << 20);
  EXPECT_TRUE(shard.TakeUsage().torrents.empty());
}

TEST(ShardRateLimiterTest, RefundReturnsTokensAndUsage) {
  ShardRateLimiter shard;
  EXPECT_FALSE(shard.limited(Direction::kDown));
  ShardShares shares;
  shares.global[0] = 1000;
  shares.torrents.push_back({1, Direction::kDown, 1000});
  shard.Apply(shares, Instant{0});
  EXPECT_TRUE(shard.limited(Direction::kDown));
  EXPECT_FALSE(shard.limited(Direction::kUp));
  EXPECT_EQ(shard.Request(1, Direction::kDown, 1 << 20, Instant{250}), 250);
  shard.Refund(1, Direction::kDown, 100, Instant{250});
  EXPECT_EQ(shard.NextRefill(1, Direction::kDown, 100, Instant{250}), Instant{250});
  EXPECT_EQ(shard.Request(1, Direction::kDown, 1 << 20, Instant{250}), 100);
  ShardUsage usage = shard.TakeUsage();
  EXPECT_EQ(usage.global[0].used, 250);
  EXPECT_EQ(usage.torrents[1][0].used, 250);
}

TEST(RateAllocatorTest, LimitedUntilALiftedLimitHasBeenSent) {
  RateAllocator allocator(2);
  EXPECT_FALSE(allocator.limited());
  allocator.SetGlobalLimit(Direction::kUp, 1000);
  EXPECT_TRUE(allocator.limited());
  allocator.SetGlobalLimit(Direction::kUp, 0);
  EXPECT_FALSE(allocator.limited());
  allocator.SetTorrentLimit(7, Direction::kDown, 500);
  (void)allocator.Rebalance({}, 250);
  allocator.SetTorrentLimit(7, Direction::kDown, 0);
  EXPECT_TRUE(allocator.limited());  // The shards still hold the old share.
  std::vector<ShardShares> shares = allocator.Rebalance({}, 250);
  EXPECT_EQ(shares[0].torrents.size(), 1u);
  EXPECT_FALSE(allocator.limited());
}

TEST(RateAllocatorTest, SendsOnlyChangedTorrentShares) {
  RateAllocator allocator(2);
  allocator.SetTorrentLimit(1, Direction::kDown, 1000);
  std::vector<ShardShares> shares = allocator.Rebalance({}, 1000);
  ASSERT_EQ(shares.size(), 2u);
  ASSERT_EQ(shares[0].torrents.size(), 1u);
  EXPECT_EQ(shares[0].torrents[0].rate + shares[1].torrents[0].rate, 1000);
  shares = allocator.Rebalance({}, 1000);
  EXPECT_TRUE(shares[0].torrents.empty());  // Nothing changed.
  allocator.SetTorrentLimit(1, Direction::kDown, 0);
  shares = allocator.Rebalance({}, 1000);
  ASSERT_EQ(shares[0].torrents.size(), 1u);
  EXPECT_EQ(shares[0].torrents[0].rate, 0);  // Lifted: the shards drop their buckets.
  shares = allocator.Rebalance({}, 1000);
  EXPECT_TRUE(shares[0].torrents.empty());
}

TEST(RateAllocatorTest, SendsTheExemptTorrentsToEveryShard) {
  RateAllocator allocator(2);
  allocator.SetGlobalLimit(Direction::kDown, 1000);
  allocator.SetHonorsSessionLimits(5, false);
  allocator.SetHonorsSessionLimits(3, false);
  std::vector<ShardShares> shares = allocator.Rebalance({}, 1000);
  for (const ShardShares& s : shares) EXPECT_EQ(s.session_exempt, (std::vector<uint64_t>{3, 5}));
  allocator.RemoveTorrent(5);
  allocator.SetHonorsSessionLimits(3, true);
  shares = allocator.Rebalance({}, 1000);
  EXPECT_TRUE(shares[1].session_exempt.empty());
}

}  // namespace
}  // namespace torrenty::engine
