#include "engine/torrent/choker.h"

#include <algorithm>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::UnorderedElementsAre;

std::vector<ChokerPeer> Peers(int n) {
  std::vector<ChokerPeer> peers;
  for (int i = 1; i <= n; ++i) {
    ChokerPeer p;
    p.key = static_cast<uint32_t>(i);
    p.interested = true;
    p.download_rate = 1000.0 * i;      // peer i sends us i KB/s
    p.upload_rate = 1000.0 * (n - i);  // we send the low keys fastest
    peers.push_back(p);
  }
  return peers;
}

bool Contains(const std::vector<uint32_t>& v, uint32_t k) {
  return std::find(v.begin(), v.end(), k) != v.end();
}

TEST(ChokerTest, LeechingUnchokesTheFourBestUploadersPlusOneOptimistic) {
  Choker choker(ChokerConfig{}, 1);
  std::vector<ChokerPeer> peers = Peers(10);
  std::vector<uint32_t> u = choker.Run(peers, /*seeding=*/false, Instant{0});
  ASSERT_EQ(u.size(), 5u);
  for (uint32_t k : {10u, 9u, 8u, 7u}) EXPECT_TRUE(Contains(u, k)) << k;
  EXPECT_TRUE(Contains(u, choker.optimistic()));
  EXPECT_LT(choker.optimistic(), 7u);
}

TEST(ChokerTest, SeedingRanksByOurUploadRate) {
  Choker choker(ChokerConfig{}, 1);
  std::vector<uint32_t> u = choker.Run(Peers(10), /*seeding=*/true, Instant{0});
  for (uint32_t k : {1u, 2u, 3u, 4u}) EXPECT_TRUE(Contains(u, k)) << k;
}

TEST(ChokerTest, UninterestedAndSnubbedPeersAreNotReciprocated) {
  Choker choker(ChokerConfig{}, 1);
  std::vector<ChokerPeer> peers = Peers(6);
  peers[5].interested = false;  // key 6, the best uploader
  peers[4].snubbed = true;      // key 5
  std::vector<uint32_t> u = choker.Run(peers, false, Instant{0});
  EXPECT_FALSE(Contains(u, 6));
  for (uint32_t k : {4u, 3u, 2u, 1u}) EXPECT_TRUE(Contains(u, k)) << k;
  // The only interested peer left over is the snubbed one: it may get the optimistic slot.
  EXPECT_EQ(choker.optimistic(), 5u);
}

TEST(ChokerTest, OptimisticStaysForItsIntervalThenRotates) {
  ChokerConfig cfg;
  cfg.regular_slots = 1;
  Choker choker(cfg, 7);
  std::vector<ChokerPeer> peers = Peers(8);
  choker.Run(peers, false, Instant{0});
  const uint32_t first = choker.optimistic();
  choker.Run(peers, false, Instant{10'000});
  EXPECT_EQ(choker.optimistic(), first);
  choker.Run(peers, false, Instant{20'000});
  EXPECT_EQ(choker.optimistic(), first);
  std::set<uint32_t> seen;
  for (int round = 3; round < 60; ++round) {
    choker.Run(peers, false, Instant{round * 10'000});
    seen.insert(choker.optimistic());
  }
  // Every choked peer (all but key 8, the one regular slot) gets its turn eventually.
  EXPECT_GE(seen.size(), 5u);
  EXPECT_FALSE(seen.count(8));
}

TEST(ChokerTest, OptimisticPeerThatLosesInterestIsReplacedAtOnce) {
  ChokerConfig cfg;
  cfg.regular_slots = 1;
  Choker choker(cfg, 3);
  std::vector<ChokerPeer> peers = Peers(4);
  choker.Run(peers, false, Instant{0});
  const uint32_t first = choker.optimistic();
  for (ChokerPeer& p : peers)
    if (p.key == first) p.interested = false;
  std::vector<uint32_t> u = choker.Run(peers, false, Instant{10'000});
  EXPECT_NE(choker.optimistic(), first);
  EXPECT_FALSE(Contains(u, first));
}

TEST(ChokerTest, FewPeersAreAllUnchoked) {
  Choker choker(ChokerConfig{}, 1);
  std::vector<uint32_t> u = choker.Run(Peers(3), false, Instant{0});
  EXPECT_THAT(u, UnorderedElementsAre(1u, 2u, 3u));
}

TEST(ChokerTest, DueEveryRound) {
  Choker choker(ChokerConfig{}, 1);
  EXPECT_TRUE(choker.Due(Instant{0}));
  choker.Run({}, false, Instant{0});
  EXPECT_FALSE(choker.Due(Instant{9'999}));
  EXPECT_TRUE(choker.Due(Instant{10'000}));
}

}  // namespace
}  // namespace torrenty::engine
