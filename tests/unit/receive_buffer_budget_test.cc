#include "io/session/receive_buffer_budget.h"

#include "gtest/gtest.h"

namespace torrenty::io {
namespace {

TEST(ReceiveBufferBudgetTest, GrowthStaysWithinTheBudget) {
  ReceiveBufferBudget b(100);
  EXPECT_TRUE(b.TryGrow(60));
  EXPECT_FALSE(b.TryGrow(41));
  EXPECT_TRUE(b.TryGrow(40));
  EXPECT_FALSE(b.TryGrow(1));
  EXPECT_EQ(b.used(), 100);
  b.Release(60);
  EXPECT_TRUE(b.TryGrow(50));
  EXPECT_EQ(b.used(), 90);
  EXPECT_EQ(b.peak(), 100);
}

TEST(ReceiveBufferBudgetTest, FirstBuffersAreChargedEvenBeyondTheBudget) {
  ReceiveBufferBudget b(100);
  b.Charge(80);
  b.Charge(80);  // a connection cannot work without its first buffer
  EXPECT_EQ(b.used(), 160);
  EXPECT_EQ(b.peak(), 160);
  EXPECT_FALSE(b.TryGrow(1));  // but nothing grows while over
  b.Release(80);
  b.Release(80);
  EXPECT_TRUE(b.TryGrow(100));
}

TEST(ReceiveBufferBudgetTest, ShareIsAnEighthOfThePieceMemory) {
  EXPECT_EQ(ReceiveBufferBudget::ShareOf(int64_t{32} << 20), int64_t{4} << 20);
}

}  // namespace
}  // namespace torrenty::io
