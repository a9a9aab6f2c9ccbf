// Tests for io::ResumeWriter: atomic saves that round-trip, and stamps that expose changed files.
#include "io/disk/resume_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "io/disk/file_store.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

namespace fs = std::filesystem;
using ::torrenty::testing::TempDir;

engine::Metainfo TwoFiles() {
  engine::Metainfo m;
  m.name = "t";
  m.multi_file = true;
  m.piece_length = 16384;
  m.files.push_back(engine::FileEntry{{"a.bin"}, 20000, 0});
  m.files.push_back(engine::FileEntry{{"sub", "b.bin"}, 30000, 20000});
  m.total_length = 50000;
  m.piece_hashes.resize(4);
  m.info_hash[0] = 0xAB;
  return m;
}

class ResumeWriterTest : public ::testing::Test {
 protected:
  TempDir tmp_{"torrenty-resume"};
  std::string dir_ = tmp_.path();
};

TEST_F(ResumeWriterTest, SavesAtomicallyAndLoadsBack) {
  const engine::Metainfo meta = TwoFiles();
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsNotFound(LoadResume(dir_, meta).status()));
  engine::Bitfield have(4);
  have.Set(1);
  have.Set(3);
  {
    ResumeWriter writer(dir_, store->get());
    writer.Save(have);
    ASSERT_TRUE(writer.Flush().ok());
  }
  EXPECT_FALSE(fs::exists(ResumePath(dir_, meta) + ".tmp"));
  absl::StatusOr<engine::ResumeData> loaded = LoadResume(dir_, meta);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->have.count(), 2u);
  EXPECT_TRUE(loaded->have.Get(3));
  // Nothing changed since the save: every piece it lists can be trusted.
  EXPECT_EQ(engine::TrustedPieces(*loaded, StampFiles(dir_, meta)).count(), 2u);

  // A write behind our back changes a stamp, so nothing is trusted any more.
  usleep(20'000);
  std::ofstream(dir_ + "/t/sub/b.bin", std::ios::in | std::ios::out | std::ios::binary) << "x";
  EXPECT_EQ(engine::TrustedPieces(*loaded, StampFiles(dir_, meta)).count(), 0u);
}

TEST_F(ResumeWriterTest, LatestSnapshotWins) {
  const engine::Metainfo meta = TwoFiles();
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok());
  ResumeWriter writer(dir_, store->get());
  for (uint32_t i = 0; i < 4; ++i) {
    engine::Bitfield have(4);
    for (uint32_t j = 0; j <= i; ++j) have.Set(j);
    writer.Save(have);
  }
  ASSERT_TRUE(writer.Flush().ok());
  absl::StatusOr<engine::ResumeData> loaded = LoadResume(dir_, meta);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->have.count(), 4u);
}

TEST_F(ResumeWriterTest, MissingFilesStampAsAbsent) {
  const engine::Metainfo meta = TwoFiles();
  std::vector<engine::FileStamp> stamps = StampFiles(dir_, meta);
  ASSERT_EQ(stamps.size(), 2u);
  EXPECT_EQ(stamps[0].size, -1);
  EXPECT_EQ(stamps[1].size, -1);
}

std::string ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A planted DIR/.torrenty -> elsewhere must not carry the resume file out of the folder.
TEST_F(ResumeWriterTest, SymlinkedResumeFolderIsRefused) {
  const engine::Metainfo meta = TwoFiles();
  TempDir elsewhere("torrenty-elsewhere");
  fs::create_directory_symlink(elsewhere.path(), dir_ + "/.torrenty");
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  engine::Bitfield have(4);
  have.Set(0);
  ResumeWriter writer(dir_, store->get());
  writer.Save(have);
  const absl::Status st = writer.Flush();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("symbolic link"), std::string_view::npos) << st;
  EXPECT_TRUE(fs::is_empty(elsewhere.path()));
  // Loading does not follow it either.
  {
    std::ofstream(elsewhere.path() + "/" + fs::path(ResumePath(dir_, meta)).filename().string())
        << "planted";
  }
  EXPECT_FALSE(LoadResume(dir_, meta).ok());
}

// The resume file itself, or its temp file, planted as a symlink: the target is never written;
// the save replaces the link with a regular file inside the folder.
TEST_F(ResumeWriterTest, SymlinkedResumeFileIsReplacedNotFollowed) {
  const engine::Metainfo meta = TwoFiles();
  TempDir elsewhere("torrenty-elsewhere");
  const std::string victim = elsewhere.path() + "/victim";
  const std::string victim_tmp = elsewhere.path() + "/victim_tmp";
  { std::ofstream(victim) << "precious"; }
  { std::ofstream(victim_tmp) << "precious too"; }
  fs::create_directories(dir_ + "/.torrenty");
  const std::string path = ResumePath(dir_, meta);
  fs::create_symlink(victim, path);
  fs::create_symlink(victim_tmp, path + ".tmp");
  EXPECT_FALSE(LoadResume(dir_, meta).ok());  // not read through the link
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  engine::Bitfield have(4);
  have.Set(2);
  {
    ResumeWriter writer(dir_, store->get());
    writer.Save(have);
    ASSERT_TRUE(writer.Flush().ok());
  }
  EXPECT_EQ(ReadAll(victim), "precious");
  EXPECT_EQ(ReadAll(victim_tmp), "precious too");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(path)));
  absl::StatusOr<engine::ResumeData> loaded = LoadResume(dir_, meta);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->have.Get(2));
}

// Stamps describe the files the data goes to, never something reached through a link.
TEST_F(ResumeWriterTest, StampsDoNotFollowSymlinkedFolders) {
  const engine::Metainfo meta = TwoFiles();
  TempDir elsewhere("torrenty-elsewhere");
  fs::create_directories(dir_ + "/t");
  fs::create_directories(elsewhere.path() + "/sub");
  { std::ofstream(elsewhere.path() + "/sub/b.bin") << std::string(30000, 'x'); }
  fs::create_directory_symlink(elsewhere.path() + "/sub", dir_ + "/t/sub");
  std::vector<engine::FileStamp> stamps = StampFiles(dir_, meta);
  ASSERT_EQ(stamps.size(), 2u);
  EXPECT_EQ(stamps[1].size, -1);
}

}  // namespace
}  // namespace torrenty::io
