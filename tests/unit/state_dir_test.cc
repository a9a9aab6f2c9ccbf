#include "io/session/state_dir.h"

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

const std::string kA(40, 'a'), kB(40, 'b'), kC(40, 'c');

TEST(StateDirTest, QueueRoundTripsAndSkipsBadLines) {
  ::torrenty::testing::TempDir tmp("torrenty-state");
  absl::StatusOr<StateDir> state = StateDir::Open(tmp.path());
  ASSERT_TRUE(state.ok()) << state.status();
  absl::StatusOr<std::optional<std::vector<std::string>>> none = state->LoadQueue();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // state from before the queue file: records decide
  ASSERT_TRUE(state->SaveQueue({kB, kA, kC}).ok());
  absl::StatusOr<std::optional<std::vector<std::string>>> q = state->LoadQueue();
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ(**q, (std::vector<std::string>{kB, kA, kC}));
  {
    std::ofstream out(tmp.path() + "/queue");
    out << kC << "\n../../etc/passwd\n" << std::string(40, 'A') << "\n\n" << kA;
  }
  q = state->LoadQueue();
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ(**q, (std::vector<std::string>{kC, kA}));
  ASSERT_TRUE(state->SaveQueue({}).ok());
  q = state->LoadQueue();
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_TRUE((*q)->empty());
}

}  // namespace
}  // namespace torrenty::io
