// Tests for io::CheckTorrentData: where it finds resume data (serve's state folder, else the
// download folder's .torrenty from before) and what a live save spares it from hashing.
#include "io/session/torrent_checker.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>

#include "gtest/gtest.h"
#include "io/disk/resume_writer.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

using ::torrenty::testing::FileSpec;
using ::torrenty::testing::MakeMeta;
using ::torrenty::testing::TempDir;
using ::torrenty::testing::TestData;

constexpr int64_t kPiece = 16384;

class CheckTorrentDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TestData(4 * kPiece);
    meta_ = MakeMeta("c.bin", {FileSpec{{}, 4 * kPiece}}, kPiece, false, data_);
    meta_.info_hash[0] = 0x42;
    WriteData(data_);
  }
  void WriteData(const std::vector<uint8_t>& bytes) {
    std::ofstream(dir_ + "/c.bin", std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  static std::vector<uint32_t> Set(const engine::Bitfield& b) {
    std::vector<uint32_t> out;
    for (uint32_t p = 0; p < b.size(); ++p) {
      if (b.Get(p)) out.push_back(p);
    }
    return out;
  }
  static engine::Bitfield Pieces(std::initializer_list<uint32_t> list) {
    engine::Bitfield b(4);
    for (uint32_t p : list) b.Set(p);
    return b;
  }
  // Moves the file's mtime as a write after the save would.
  void Touch() {
    const timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000 + ++touches_, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (dir_ + "/c.bin").c_str(), times, 0), 0);
  }

  int touches_ = 0;
  TempDir tmp_{"torrenty-checker"};
  std::string dir_ = tmp_.path();
  ResumeLocation state_ = ResumeLocation::InStateDir(tmp_.path());
  ResumeLocation legacy_ = ResumeLocation::InDataDir(tmp_.path());
  std::vector<uint8_t> data_;
  engine::Metainfo meta_;
};

// Every piece is on disk, but the resume data lists fewer: what comes back shows which file was
// read, and that nothing was hashed.
TEST_F(CheckTorrentDataTest, UsesTheDownloadFolderResumeWhenTheStateFolderHasNone) {
  ASSERT_TRUE(WriteResume(legacy_, dir_, meta_, Pieces({0, 1}), false).ok());
  CheckResult r = CheckTorrentData(meta_, dir_, state_, 1);
  ASSERT_TRUE(r.have.ok()) << r.have.status();
  EXPECT_EQ(r.have->count(), 2u) << r.note;
  EXPECT_NE(r.note.find("resume data in the download folder matches"), std::string::npos) << r.note;
  EXPECT_TRUE(r.resume_current);  // current: 10,000 restored seeds are not all rewritten

  ASSERT_TRUE(WriteResume(state_, dir_, meta_, Pieces({3}), false).ok());
  r = CheckTorrentData(meta_, dir_, state_, 1);
  ASSERT_TRUE(r.have.ok());
  EXPECT_EQ(Set(*r.have), (std::vector<uint32_t>{3})) << r.note;
  EXPECT_TRUE(r.resume_current);
}

// Piece 0 is corrupt on disk yet listed by a live save: it is trusted (not hashed), while the
// pieces the save did not list are hashed and found. A clean save with a moved mtime is not
// trusted at all: everything is hashed, and piece 0 fails.
TEST_F(CheckTorrentDataTest, LiveSaveHashesOnlyThePiecesItDoesNotList) {
  std::vector<uint8_t> bad = data_;
  bad[5] ^= 0xFF;
  WriteData(bad);
  ASSERT_TRUE(WriteResume(state_, dir_, meta_, Pieces({0}), /*live=*/true).ok());
  Touch();
  CheckResult r = CheckTorrentData(meta_, dir_, state_, 1);
  ASSERT_TRUE(r.have.ok()) << r.have.status();
  EXPECT_EQ(Set(*r.have), (std::vector<uint32_t>{0, 1, 2, 3})) << r.note;
  EXPECT_NE(r.note.find("saved while running: 1/4 pieces trusted"), std::string::npos) << r.note;

  ASSERT_TRUE(WriteResume(state_, dir_, meta_, Pieces({0}), /*live=*/false).ok());
  Touch();
  r = CheckTorrentData(meta_, dir_, state_, 1);
  ASSERT_TRUE(r.have.ok());
  EXPECT_EQ(Set(*r.have), (std::vector<uint32_t>{1, 2, 3})) << r.note;
}

}  // namespace
}  // namespace torrenty::io
