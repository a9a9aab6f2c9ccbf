#include "engine/session/seed_limits.h"

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(SeedLimitsTest, NothingLimitedByDefault) {
  SeedCounters c{.uploaded = 100 * kMiB,
                 .downloaded = kMiB,
                 .size_when_done = kMiB,
                 .idle_ms = int64_t{1} << 40};
  EXPECT_EQ(CheckSeedLimits({}, {}, c), SeedStop::kKeepSeeding);
}

TEST(SeedLimitsTest, SessionRatioAppliesInGlobalMode) {
  SessionSeedLimits s{.ratio_limited = true, .ratio_limit = 1.5};
  SeedCounters c{.uploaded = 3 * kMiB - 1, .downloaded = 2 * kMiB, .size_when_done = 2 * kMiB};
  EXPECT_EQ(CheckSeedLimits(s, {}, c), SeedStop::kKeepSeeding);
  c.uploaded = 3 * kMiB;
  EXPECT_EQ(CheckSeedLimits(s, {}, c), SeedStop::kRatioReached);
}

TEST(SeedLimitsTest, TorrentModeOverridesSession) {
  SessionSeedLimits s{.ratio_limited = true, .ratio_limit = 0.1};
  SeedCounters c{.uploaded = kMiB, .downloaded = 4 * kMiB, .size_when_done = 4 * kMiB};
  TorrentSeedLimits own{.ratio_mode = SeedLimitMode::kSingle, .ratio_limit = 0.5};
  EXPECT_EQ(CheckSeedLimits(s, own, c), SeedStop::kKeepSeeding);  // 0.25 < 0.5
  TorrentSeedLimits unlimited{.ratio_mode = SeedLimitMode::kUnlimited};
  c.uploaded = 400 * kMiB;
  EXPECT_EQ(CheckSeedLimits(s, unlimited, c), SeedStop::kKeepSeeding);
  EXPECT_EQ(CheckSeedLimits(s, {}, c), SeedStop::kRatioReached);
  // A torrent's own limit applies even when the session's is off.
  EXPECT_EQ(CheckSeedLimits({}, own, c), SeedStop::kRatioReached);
}

TEST(SeedLimitsTest, NothingDownloadedCountsAgainstSize) {
  SeedCounters c{.uploaded = kMiB, .downloaded = 0, .size_when_done = 2 * kMiB};
  EXPECT_DOUBLE_EQ(SeedRatio(c), 0.5);
  EXPECT_DOUBLE_EQ(SeedRatio(SeedCounters{}), 0);
  TorrentSeedLimits own{.ratio_mode = SeedLimitMode::kSingle, .ratio_limit = 0.5};
  EXPECT_EQ(CheckSeedLimits({}, own, c), SeedStop::kRatioReached);
}

TEST(SeedLimitsTest, ZeroRatioStopsAtOnce) {
  TorrentSeedLimits own{.ratio_mode = SeedLimitMode::kSingle, .ratio_limit = 0};
  EXPECT_EQ(CheckSeedLimits({}, own, SeedCounters{.size_when_done = kMiB}),
            SeedStop::kRatioReached);
}

TEST(SeedLimitsTest, IdleLimitInMinutes) {
  SessionSeedLimits s{.idle_limited = true, .idle_minutes = 2};
  SeedCounters c{.uploaded = 0, .downloaded = kMiB, .size_when_done = kMiB, .idle_ms = 119'999};
  EXPECT_EQ(CheckSeedLimits(s, {}, c), SeedStop::kKeepSeeding);
  c.idle_ms = 120'000;
  EXPECT_EQ(CheckSeedLimits(s, {}, c), SeedStop::kIdleReached);
  TorrentSeedLimits own{.idle_mode = SeedLimitMode::kSingle, .idle_minutes = 5};
  EXPECT_EQ(CheckSeedLimits(s, own, c), SeedStop::kKeepSeeding);
  TorrentSeedLimits unlimited{.idle_mode = SeedLimitMode::kUnlimited};
  EXPECT_EQ(CheckSeedLimits(s, unlimited, c), SeedStop::kKeepSeeding);
  EXPECT_EQ(EffectiveIdleMinutes({}, own), 5);
  EXPECT_EQ(EffectiveIdleMinutes({}, {}), std::nullopt);
}

}  // namespace
}  // namespace torrenty::engine
