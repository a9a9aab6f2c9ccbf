// Tests for io::CheckExistingData: complete, corrupted, truncated and never-written data.
#include "io/recheck.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "io/file_store.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

namespace fs = std::filesystem;
using ::torrenty::testing::FileSpec;
using ::torrenty::testing::MakeMeta;
using ::torrenty::testing::TempDir;
using ::torrenty::testing::TestData;

class RecheckTest : public ::testing::Test {
 protected:
  RecheckTest() : dir_(tmp_.path()) {
    data_ = TestData(kTotal, 4);
    meta_ = MakeMeta(
        "t", {{{"a"}, 10000}, {{"sub", "b"}, 0}, {{"sub", "c"}, 30000}, {{"d"}, kTotal - 40000}},
        kPiece, true, data_);
  }

  // Writes the torrent's files with the correct content.
  void WriteAll() {
    fs::create_directories(dir_ + "/t/sub");
    for (const engine::FileEntry& f : meta_.files) {
      std::string p = dir_ + "/t";
      for (const auto& c : f.path) p += "/" + c;
      std::ofstream o(p, std::ios::binary);
      o.write(reinterpret_cast<const char*>(data_.data() + f.offset), f.length);
    }
  }

  static constexpr int64_t kPiece = 4096;
  static constexpr int64_t kTotal = 100000;  // 25 pieces, the last one short
  TempDir tmp_{"torrenty_rc"};
  std::string dir_;
  std::vector<uint8_t> data_;
  engine::Metainfo meta_;
};

TEST_F(RecheckTest, CompleteDataHasEveryPiece) {
  WriteAll();
  auto store = FileStore::Open(dir_, meta_, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int threads : {1, 2, 4, 64}) {
    std::atomic<uint32_t> progress{0};
    auto have = CheckExistingData(**store, threads, &progress);
    ASSERT_TRUE(have.ok()) << have.status();
    EXPECT_EQ(have->size(), meta_.num_pieces());
    EXPECT_TRUE(have->all()) << threads << " threads: " << have->count();
    EXPECT_EQ(progress.load(), meta_.num_pieces());
  }
}

TEST_F(RecheckTest, CorruptedByteMissesOnlyThatPiece) {
  WriteAll();
  // Torrent offset 10000 + 20000 = 30000 lies in piece 7 (28672..32767), inside sub/c.
  {
    std::fstream f(dir_ + "/t/sub/c", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(20000);
    f.put(static_cast<char>(data_[30000] ^ 0xFF));
  }
  auto store = FileStore::Open(dir_, meta_, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 2);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_EQ(have->count(), meta_.num_pieces() - 1);
  EXPECT_FALSE(have->Get(7));
}

TEST_F(RecheckTest, TruncatedFileMissesTrailingPieces) {
  WriteAll();
  // d holds torrent bytes 40000..99999; keep 20000 of them, so data ends at 60000 (in piece 14).
  ASSERT_EQ(truncate((dir_ + "/t/d").c_str(), 20000), 0);
  auto store = FileStore::Open(dir_, meta_, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 3);
  ASSERT_TRUE(have.ok()) << have.status();
  for (uint32_t p = 0; p < meta_.num_pieces(); ++p) EXPECT_EQ(have->Get(p), p < 14) << p;
}

TEST_F(RecheckTest, TruncatedFileExtendedForDownloadMissesTheSamePieces) {
  WriteAll();
  ASSERT_EQ(truncate((dir_ + "/t/d").c_str(), 20000), 0);
  // kCreate grows d back to full length (sparse): the tail reads as a hole, not as data.
  auto store = FileStore::Open(dir_, meta_, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 2);
  ASSERT_TRUE(have.ok()) << have.status();
  for (uint32_t p = 0; p < meta_.num_pieces(); ++p) EXPECT_EQ(have->Get(p), p < 14) << p;
}

TEST_F(RecheckTest, FreshDownloadHasNothing) {
  auto store = FileStore::Open(dir_, meta_, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  std::atomic<uint32_t> progress{0};
  auto have = CheckExistingData(**store, 2, &progress);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_TRUE(have->none());
  EXPECT_EQ(progress.load(), meta_.num_pieces());
}

TEST_F(RecheckTest, SingleFileTorrent) {
  auto data = TestData(3 * 1024 + 5, 8);
  engine::Metainfo m =
      MakeMeta("one.bin", {{{}, static_cast<int64_t>(data.size())}}, 1024, false, data);
  {
    std::ofstream o(dir_ + "/one.bin", std::ios::binary);
    o.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  auto store = FileStore::Open(dir_, m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 0);  // < 1 thread counts as 1
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_EQ(have->count(), 4u);
}

}  // namespace
}  // namespace torrenty::io
