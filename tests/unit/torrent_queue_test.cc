#include "engine/session/torrent_queue.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using K = QueueKind;

TEST(TorrentQueueTest, DisabledQueueStartsEveryWaitingTorrent) {
  std::vector<QueueSlot> q = {
      {1, K::kDownload, true, false}, {2, K::kDownload, false, true}, {3, K::kSeed, false, true}};
  EXPECT_EQ(TorrentsToStart({}, q), (std::vector<uint32_t>{2, 3}));
}

TEST(TorrentQueueTest, DownloadQueueStartsInOrderWhileThereIsRoom) {
  QueueLimits l{.download_enabled = true, .download_size = 2};
  std::vector<QueueSlot> q = {{1, K::kDownload, false, true},
                              {2, K::kDownload, true, false},
                              {3, K::kDownload, false, true},
                              {4, K::kSeed, false, true}};
  // One slot is free: the first waiting download takes it; seeds have no queue.
  EXPECT_EQ(TorrentsToStart(l, q), (std::vector<uint32_t>{1, 4}));
  q[0].active = true;
  q[0].waiting = false;
  EXPECT_EQ(TorrentsToStart(l, q), (std::vector<uint32_t>{4}));
  EXPECT_FALSE(QueueHasRoom(l, K::kDownload, 2));
  EXPECT_TRUE(QueueHasRoom(l, K::kDownload, 1));
}

TEST(TorrentQueueTest, SeedQueueIsSeparateAndNeverPreempts) {
  QueueLimits l{.download_enabled = true, .download_size = 1, .seed_enabled = true, .seed_size = 1};
  std::vector<QueueSlot> q = {{1, K::kSeed, true, false},
                              {2, K::kSeed, true, false},  // over the size: keeps running
                              {3, K::kSeed, false, true},
                              {4, K::kDownload, false, true}};
  EXPECT_EQ(TorrentsToStart(l, q), (std::vector<uint32_t>{4}));
  l.seed_size = 0;
  EXPECT_FALSE(QueueHasRoom(l, K::kSeed, 0));
}

TEST(TorrentQueueTest, StalledAfterMinutesOnlyWhenEnabled) {
  QueueLimits l{.stalled_minutes = 2};
  EXPECT_FALSE(QueueStalled(l, 1'000'000));
  l.stalled_enabled = true;
  EXPECT_FALSE(QueueStalled(l, 119'999));
  EXPECT_TRUE(QueueStalled(l, 120'000));
}

TEST(TorrentQueueTest, MovesKeepRelativeOrder) {
  auto sel = [](std::initializer_list<uint32_t> ids) {
    std::vector<uint32_t> s(ids);
    return [s](uint32_t id) { return std::find(s.begin(), s.end(), id) != s.end(); };
  };
  std::vector<uint32_t> v = {1, 2, 3, 4, 5};
  MoveInQueue(&v, QueueMove::kTop, sel({4, 2}));
  EXPECT_EQ(v, (std::vector<uint32_t>{2, 4, 1, 3, 5}));
  MoveInQueue(&v, QueueMove::kBottom, sel({2}));
  EXPECT_EQ(v, (std::vector<uint32_t>{4, 1, 3, 5, 2}));
  MoveInQueue(&v, QueueMove::kUp, sel({3, 5}));
  EXPECT_EQ(v, (std::vector<uint32_t>{4, 3, 5, 1, 2}));
  MoveInQueue(&v, QueueMove::kUp, sel({4}));  // already first
  EXPECT_EQ(v, (std::vector<uint32_t>{4, 3, 5, 1, 2}));
  MoveInQueue(&v, QueueMove::kDown, sel({4, 3}));
  EXPECT_EQ(v, (std::vector<uint32_t>{5, 4, 3, 1, 2}));
  MoveInQueue(&v, QueueMove::kDown, sel({2}));  // already last
  EXPECT_EQ(v, (std::vector<uint32_t>{5, 4, 3, 1, 2}));
}

TEST(TorrentQueueTest, SetPositionClamps) {
  std::vector<uint32_t> v = {1, 2, 3};
  SetQueuePosition(&v, 3, 0);
  EXPECT_EQ(v, (std::vector<uint32_t>{3, 1, 2}));
  SetQueuePosition(&v, 3, 99);
  EXPECT_EQ(v, (std::vector<uint32_t>{1, 2, 3}));
  SetQueuePosition(&v, 7, 0);  // unknown id
  EXPECT_EQ(v, (std::vector<uint32_t>{1, 2, 3}));
}

}  // namespace
}  // namespace torrenty::engine
