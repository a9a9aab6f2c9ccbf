// The piece claims and memory budget that shards of one torrent share: io/'s thread-safe tables
// must keep the same rules as the engine's single-shard ones, and hold them under contention.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "engine/torrent/piece_claims.h"
#include "engine/torrent/piece_memory.h"
#include "gtest/gtest.h"
#include "io/session/shared_piece_claims.h"
#include "io/session/shared_piece_memory.h"

namespace torrenty {
namespace {

using engine::PieceClaims;
using State = engine::PieceClaims::State;

template <typename T>
class ClaimsTest : public ::testing::Test {};
using ClaimTables = ::testing::Types<engine::LocalPieceClaims, io::SharedPieceClaims>;
TYPED_TEST_SUITE(ClaimsTest, ClaimTables);

TYPED_TEST(ClaimsTest, FreeClaimedHave) {
  TypeParam table(3);
  PieceClaims& claims = table;
  EXPECT_EQ(claims.Get(1), State::kFree);
  EXPECT_TRUE(claims.TryClaim(1));
  EXPECT_FALSE(claims.TryClaim(1));  // one shard per piece
  EXPECT_EQ(claims.Get(1), State::kClaimed);
  claims.Release(1);
  EXPECT_EQ(claims.Get(1), State::kFree);
  EXPECT_TRUE(claims.TryClaim(1));
  claims.MarkHave(1);
  EXPECT_EQ(claims.Get(1), State::kHave);
  claims.Release(1);  // a shard giving up its copy does not undo another's verified piece
  EXPECT_EQ(claims.Get(1), State::kHave);
  EXPECT_FALSE(claims.TryClaim(1));
  claims.MarkHave(2);  // had before anyone claimed it (resume data)
  EXPECT_FALSE(claims.TryClaim(2));
  EXPECT_EQ(claims.Get(0), State::kFree);
}

template <typename T>
class MemoryTest : public ::testing::Test {};
using Budgets = ::testing::Types<engine::LocalPieceMemory, io::SharedPieceMemory>;
TYPED_TEST_SUITE(MemoryTest, Budgets);

TYPED_TEST(MemoryTest, BudgetAdmitsOneOversizedBufferAlone) {
  constexpr int64_t kBudget = int64_t{32} << 20;
  TypeParam memory(kBudget);
  const int64_t huge = int64_t{512} << 20;
  ASSERT_TRUE(memory.TryReserve(huge));
  EXPECT_FALSE(memory.TryReserve(huge));
  EXPECT_FALSE(memory.TryReserve(1 << 20));
  EXPECT_TRUE(memory.wanted());
  memory.Release(huge);
  EXPECT_EQ(memory.used(), 0);
  ASSERT_TRUE(memory.TryReserve(int64_t{16} << 20));
  EXPECT_FALSE(memory.wanted());
  ASSERT_TRUE(memory.TryReserve(int64_t{16} << 20));
  EXPECT_FALSE(memory.TryReserve(1));
  EXPECT_EQ(memory.used(), kBudget);
}

// Shards racing for every piece: each piece is claimed by exactly one of them. (A smoke test: a
// lost compare-exchange race is too rare to catch here; ThreadSanitizer builds cover the rest.)
TEST(SharedPieceClaims, EachPieceClaimedOnceUnderContention) {
  constexpr uint32_t kPieces = 20'000;
  constexpr int kThreads = 4;
  io::SharedPieceClaims claims(kPieces);
  std::vector<std::vector<uint32_t>> won(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t p = 0; p < kPieces; ++p) {
        if (claims.TryClaim(p)) won[t].push_back(p);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::vector<int> count(kPieces, 0);
  for (const auto& w : won)
    for (uint32_t p : w) ++count[p];
  for (uint32_t p = 0; p < kPieces; ++p) ASSERT_EQ(count[p], 1) << "piece " << p;
}

// Shards reserving and releasing buffers at once never hold more than the budget together.
TEST(SharedPieceMemory, ConcurrentReservationsStayWithinBudget) {
  constexpr int64_t kBuffer = 1 << 20;
  constexpr int64_t kBudget = 8 * kBuffer;
  constexpr int kThreads = 4;
  io::SharedPieceMemory memory(kBudget);
  std::atomic<int64_t> held{0};
  std::atomic<int64_t> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        if (!memory.TryReserve(kBuffer)) continue;
        const int64_t now = held.fetch_add(kBuffer) + kBuffer;
        int64_t prev = most.load();
        while (now > prev && !most.compare_exchange_weak(prev, now)) {
        }
        held.fetch_sub(kBuffer);
        memory.Release(kBuffer);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(most.load(), kBudget);
  EXPECT_EQ(memory.used(), 0);
}

}  // namespace
}  // namespace torrenty
