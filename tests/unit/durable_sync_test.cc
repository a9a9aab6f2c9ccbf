#include "io/disk/durable_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

class DurableSyncTest : public ::testing::Test {
 protected:
  void SetUp() override { std::ofstream(file_) << "bytes"; }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }
  dev_t DevOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0);
    return st.st_dev;
  }

  ::torrenty::testing::TempDir tmp_{"torrenty-sync"};
  std::string file_ = tmp_.path() + "/f.bin";
  int fd_ = -1;
};

TEST_F(DurableSyncTest, SyncfsNamesTheFilesystemItSynced) {
  fd_ = open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd_, 0);
  absl::StatusOr<dev_t> dev = SyncFilesystemOf(fd_, file_);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(*dev, DevOf(file_));
  absl::StatusOr<dev_t> bad = SyncFilesystemOf(-1, "nowhere");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nowhere"), std::string::npos) << bad.status();
}

// fdatasync fails on an O_PATH descriptor (EBADF), which shows whether it was called at all.
TEST_F(DurableSyncTest, AFileOnTheSyncedFilesystemIsNotSyncedAgain) {
  fd_ = open(file_.c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(fd_, 0);
  EXPECT_TRUE(SyncFileUnlessOn(fd_, DevOf(file_), file_).ok());
  absl::Status alone = SyncFileUnlessOn(fd_, std::nullopt, file_);
  ASSERT_FALSE(alone.ok());
  EXPECT_NE(alone.message().find("fdatasync " + file_), std::string::npos) << alone;
  // A file on another filesystem than the synced one gets its own fdatasync.
  EXPECT_FALSE(SyncFileUnlessOn(fd_, DevOf(file_) + 1, file_).ok());
}

}  // namespace
}  // namespace torrenty::io
