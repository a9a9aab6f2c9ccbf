#include "engine/torrent/request_depth.h"

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

// Feeds blocks at `blocks_per_s` for `ms`, starting at `*now`.
void Deliver(RequestDepth& d, Instant* now, int64_t blocks_per_s, int64_t ms) {
  const int64_t end = now->ms + ms;
  const int64_t step_us = 1'000'000 / blocks_per_s;
  int64_t us = now->ms * 1000;
  while (us / 1000 < end) {
    d.OnBlock(kBlockSize, Instant{us / 1000});
    us += step_us;
  }
  now->ms = end;
}

TEST(RequestDepthTest, StartsAtTheInitialDepth) {
  RequestDepth d;
  EXPECT_EQ(d.depth(), 32u);
  EXPECT_TRUE(d.slow_start());
}

TEST(RequestDepthTest, FastPeerReachesTheMaximum) {
  RequestDepth d;
  Instant now{1000};
  Deliver(d, &now, 40'000, 3000);  // 640 MB/s
  EXPECT_EQ(d.depth(), 128u);
}

// A peer whose rate stays at 20 blocks/s (an origin shared by a fleet) is asked for about a
// second of its data, not 2 MiB.
TEST(RequestDepthTest, SlowPeerGetsAboutASecondOfItsRate) {
  RequestDepth d;
  Instant now{1000};
  Deliver(d, &now, 20, 5000);
  EXPECT_FALSE(d.slow_start());
  EXPECT_GE(d.depth(), 19u);
  EXPECT_LE(d.depth(), 22u);
}

TEST(RequestDepthTest, FollowsTheRateUpAndDown) {
  RequestDepth d;
  Instant now{1000};
  Deliver(d, &now, 20, 3000);
  ASSERT_FALSE(d.slow_start());
  Deliver(d, &now, 80, 3000);
  EXPECT_GE(d.depth(), 75u);
  EXPECT_LE(d.depth(), 85u);
  Deliver(d, &now, 10, 3000);
  EXPECT_GE(d.depth(), 9u);
  EXPECT_LE(d.depth(), 12u);
  Deliver(d, &now, 1, 6000);
  EXPECT_EQ(d.depth(), 4u) << "never below the minimum";
}

// Nothing asked for a while (choked) is not a slow peer.
TEST(RequestDepthTest, AnIdleGapDoesNotShrinkTheDepth) {
  RequestDepth d;
  Instant now{1000};
  Deliver(d, &now, 60, 3000);
  const uint32_t before = d.depth();
  now.ms += 30'000;
  d.OnBlock(kBlockSize, now);
  Deliver(d, &now, 60, 400);
  EXPECT_EQ(d.depth(), before);
}

TEST(RequestDepthTest, ConfigBoundsHold) {
  RequestDepth d({.initial = 32, .min = 1, .max = 1, .queue_ms = 1000, .window_ms = 500});
  Instant now{1000};
  EXPECT_EQ(d.depth(), 1u);
  Deliver(d, &now, 1000, 2000);
  EXPECT_EQ(d.depth(), 1u);
}

}  // namespace
}  // namespace torrenty::engine
