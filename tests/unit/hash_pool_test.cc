// Tests for io::HashPool: verdicts, many jobs across threads, and the eventfd wake-up.
#include "io/disk/hash_pool.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "engine/base/sha1.h"
#include "gtest/gtest.h"
#include "io/ring/ring.h"
#include "tests/testing/metainfo_fixtures.h"
#include "tests/testing/piece_buffers.h"

namespace torrenty::io {
namespace {

using ::torrenty::testing::BufferOf;
using ::torrenty::testing::TestData;

// Waits for the eventfd and collects results until `want` have arrived.
std::vector<HashResult> Collect(HashPool& pool, size_t want) {
  std::vector<HashResult> out;
  for (int i = 0; i < 500 && out.size() < want; ++i) {
    pollfd pfd{pool.notify_fd(), POLLIN, 0};
    if (poll(&pfd, 1, 20) == 1) {
      uint64_t n;
      EXPECT_EQ(read(pool.notify_fd(), &n, sizeof(n)), static_cast<ssize_t>(sizeof(n)));
    }
    pool.TakeResults(&out);
  }
  return out;
}

TEST(HashPoolTest, RejectsZeroThreads) {
  EXPECT_TRUE(absl::IsInvalidArgument(HashPool::Create(0).status()));
}

TEST(HashPoolTest, GoodAndBadDigests) {
  auto pool = HashPool::Create(1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = TestData(100000, 1);
  auto b = TestData(5, 2);
  engine::Sha1Digest wrong = engine::Sha1(a);
  wrong[0] ^= 1;
  (*pool)->Submit(1, BufferOf(a), engine::Sha1(a));
  (*pool)->Submit(2, BufferOf(a), wrong);
  (*pool)->Submit(3, BufferOf(b), engine::Sha1(b));
  (*pool)->Submit(4, BufferOf({}), engine::Sha1({}));
  auto results = Collect(**pool, 4);
  ASSERT_EQ(results.size(), 4u);
  std::sort(results.begin(), results.end(),
            [](const HashResult& x, const HashResult& y) { return x.tag < y.tag; });
  EXPECT_TRUE(results[0].ok);
  EXPECT_FALSE(results[1].ok);
  EXPECT_TRUE(results[2].ok);
  EXPECT_TRUE(results[3].ok);
}

// A piece hashed in chunks while it arrives (Action::kHashChunk): each chunk job continues the
// state it was given and hands it back; the last job continues it over the rest of the buffer
// and compares, so the verdict is the whole buffer's.
TEST(HashPoolTest, ChunksContinueTheStateAndThePieceResumesIt) {
  auto pool = HashPool::Create(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const std::vector<uint8_t> data = TestData(5 * 16384 + 100, 7);
  engine::Sha1Digest wrong = engine::Sha1(data);
  wrong[3] ^= 1;
  for (const bool good : {true, false}) {
    engine::Sha1Hasher state;
    size_t hashed = 0;
    for (const size_t len : {size_t{16384}, size_t{2 * 16384}}) {
      (*pool)->SubmitChunk(0, 10 + hashed, std::move(state),
                           absl::MakeConstSpan(data).subspan(hashed, len));
      auto results = Collect(**pool, 1);
      ASSERT_EQ(results.size(), 1u);
      EXPECT_TRUE(results[0].chunk);
      EXPECT_EQ(results[0].tag, 10 + hashed);
      EXPECT_TRUE(results[0].buffer.empty());
      state = std::move(results[0].state);
      hashed += len;
    }
    (*pool)->Submit(0, 99, BufferOf(data), good ? engine::Sha1(data) : wrong, std::move(state),
                    hashed);
    auto results = Collect(**pool, 1);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_FALSE(results[0].chunk);
    EXPECT_EQ(results[0].ok, good);
    EXPECT_EQ(results[0].buffer.size(), data.size());
  }
}

// The job owns the buffer and its result hands back the same allocation.
TEST(HashPoolTest, ResultHandsTheBufferBack) {
  auto pool = HashPool::Create(1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = TestData(5000, 3);
  engine::PieceBuffer buffer = BufferOf(a);
  const uint8_t* address = buffer.data();
  (*pool)->Submit(7, std::move(buffer), engine::Sha1(a));
  auto results = Collect(**pool, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].buffer.data(), address);
  EXPECT_EQ(results[0].buffer.size(), a.size());
}

TEST(HashPoolTest, NotifyFdBecomesReadable) {
  auto pool = HashPool::Create(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pollfd pfd{(*pool)->notify_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);  // nothing yet
  auto a = TestData(1000, 3);
  (*pool)->Submit(9, BufferOf(a), engine::Sha1(a));
  ASSERT_EQ(poll(&pfd, 1, 5000), 1);
  uint64_t n = 0;
  ASSERT_EQ(read((*pool)->notify_fd(), &n, sizeof(n)), static_cast<ssize_t>(sizeof(n)));
  EXPECT_GE(n, 1u);
  std::vector<HashResult> out;
  (*pool)->TakeResults(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 9u);
  EXPECT_TRUE(out[0].ok);
  // Nonblocking: drained eventfd reads fail with EAGAIN instead of hanging.
  EXPECT_EQ(read((*pool)->notify_fd(), &n, sizeof(n)), -1);
}

TEST(HashPoolTest, ManyJobsOnTwoThreadsFromSeveralSubmitters) {
  auto pool = HashPool::Create(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  constexpr int kJobs = 2000;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<engine::Sha1Digest> digests;
  for (int i = 0; i < kJobs; ++i) {
    bufs.push_back(TestData(1 + (i * 37) % 5000, i));
    digests.push_back(engine::Sha1(bufs.back()));
    if (i % 5 == 0) digests.back()[19] ^= 0x80;  // every fifth one is corrupt
  }
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = t; i < kJobs; i += 4) (*pool)->Submit(i, BufferOf(bufs[i]), digests[i]);
    });
  }
  for (auto& t : submitters) t.join();
  auto results = Collect(**pool, kJobs);
  ASSERT_EQ(results.size(), static_cast<size_t>(kJobs));
  std::set<uint64_t> seen;
  for (const HashResult& r : results) {
    EXPECT_TRUE(seen.insert(r.tag).second) << "duplicate " << r.tag;
    EXPECT_EQ(r.ok, r.tag % 5 != 0) << r.tag;
  }
}

TEST(HashPoolTest, RingCanReadNotifyFd) {
  auto ring = Ring::Create(8);
  if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable: " << ring.status();
  auto pool = HashPool::Create(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  struct Reader {
    uint64_t value = 0;
    int32_t res = 0;
    bool fired = false;
    void OnRead(int32_t r, uint32_t) {
      res = r;
      fired = true;
    }
  } reader;
  Completion c = MakeCompletion<&Reader::OnRead>(&reader);
  (*ring)->Read((*pool)->notify_fd(), &reader.value, sizeof(reader.value), 0, &c);
  auto a = TestData(4096, 5);
  (*pool)->Submit(42, BufferOf(a), engine::Sha1(a));
  for (int i = 0; i < 100 && !reader.fired; ++i) ASSERT_TRUE((*ring)->RunOnce(50).ok());
  ASSERT_TRUE(reader.fired);
  EXPECT_EQ(reader.res, 8);
  std::vector<HashResult> out;
  (*pool)->TakeResults(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 42u);
}

TEST(HashPoolTest, DestroyWithPendingJobsDoesNotHang) {
  auto pool = HashPool::Create(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = TestData(1 << 20, 6);
  for (int i = 0; i < 200; ++i) (*pool)->Submit(i, BufferOf(a), engine::Sha1Digest{});
  pool->reset();  // joins; queued jobs are dropped
}

}  // namespace
}  // namespace torrenty::io
