// Tests for io::ResumeWriter: atomic saves that round-trip, stamps that expose changed files, and
// the session's one writer: coalescing per torrent, order, removal and error reports.
#include "io/disk/resume_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>
#include <vector>

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

ResumeJob SaveJob(const engine::Metainfo& meta, const std::string& dir, engine::Bitfield have,
                  uint64_t tag = 0, ResumeLocation where = {}) {
  ResumeJob job;
  job.tag = tag;
  job.meta = std::make_shared<const engine::Metainfo>(meta);
  job.data_dir = dir;
  job.where = where.base.empty() ? ResumeLocation::InDataDir(dir) : std::move(where);
  job.have = std::move(have);
  return job;
}

engine::Bitfield FirstPieces(uint32_t n) {
  engine::Bitfield have(4);
  for (uint32_t i = 0; i < n; ++i) have.Set(i);
  return have;
}

class ResumeWriterTest : public ::testing::Test {
 protected:
  TempDir tmp_{"torrenty-resume"};
  std::string dir_ = tmp_.path();
};

TEST(FileHoldsNewPieceTest, OnlyFilesThatHoldANewlyHadPieceNeedASync) {
  // a.bin is bytes [0, 20000): pieces 0-1; sub/b.bin is [20000, 50000): pieces 1-3.
  const engine::Metainfo meta = TwoFiles();
  const engine::Bitfield none(4);
  EXPECT_TRUE(FileHoldsNewPiece(meta, 0, FirstPieces(1), none));
  EXPECT_FALSE(FileHoldsNewPiece(meta, 1, FirstPieces(1), none));
  // Piece 1 straddles both files.
  EXPECT_TRUE(FileHoldsNewPiece(meta, 0, FirstPieces(2), FirstPieces(1)));
  EXPECT_TRUE(FileHoldsNewPiece(meta, 1, FirstPieces(2), FirstPieces(1)));
  EXPECT_FALSE(FileHoldsNewPiece(meta, 0, FirstPieces(3), FirstPieces(2)));
  EXPECT_TRUE(FileHoldsNewPiece(meta, 1, FirstPieces(3), FirstPieces(2)));
  // Nothing new: nothing to sync.
  EXPECT_FALSE(FileHoldsNewPiece(meta, 0, FirstPieces(4), FirstPieces(4)));
  EXPECT_FALSE(FileHoldsNewPiece(meta, 1, FirstPieces(4), FirstPieces(4)));
}

TEST_F(ResumeWriterTest, SavesAtomicallyAndLoadsBack) {
  const engine::Metainfo meta = TwoFiles();
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsNotFound(LoadResume(dir_, meta).status()));
  engine::Bitfield have(4);
  have.Set(1);
  have.Set(3);
  {
    ResumeWriter writer;
    writer.Submit(SaveJob(meta, dir_, have));
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
  ResumeWriter writer;
  for (uint32_t i = 0; i < 4; ++i) writer.Submit(SaveJob(meta, dir_, FirstPieces(i + 1)));
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
  ResumeWriter writer;
  writer.Submit(SaveJob(meta, dir_, have));
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
    ResumeWriter writer;
    writer.Submit(SaveJob(meta, dir_, have));
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

// Three torrents in one state folder. While the writer is held inside its first job, A, B and C
// are queued, then A again twice and B again: A and B are each written once more (their latest
// snapshots), in the order they were first queued, and every Submit is reported.
TEST_F(ResumeWriterTest, CoalescesPerTorrentAndKeepsFirstQueuedOrder) {
  engine::Metainfo ma = TwoFiles(), mb = TwoFiles(), mc = TwoFiles();
  mb.info_hash[0] = 0xBB;
  mc.info_hash[0] = 0xCC;
  const ResumeLocation state = ResumeLocation::InStateDir(dir_ + "/state");
  fs::create_directories(dir_ + "/state");
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::pair<uint64_t, bool>> done;  // (tag, ok) in report order
  ResumeWriter writer([&](uint64_t tag, const absl::Status& st) {
    std::unique_lock<std::mutex> lock(mu);
    done.emplace_back(tag, st.ok());
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  writer.Submit(SaveJob(ma, dir_, FirstPieces(1), 1, state));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !done.empty(); });  // the writer holds A's first snapshot
  }
  writer.Submit(SaveJob(mb, dir_, FirstPieces(1), 2, state));
  writer.Submit(SaveJob(ma, dir_, FirstPieces(2), 1, state));
  writer.Submit(SaveJob(mc, dir_, FirstPieces(1), 3, state));
  writer.Submit(SaveJob(ma, dir_, FirstPieces(4), 1, state));
  writer.Submit(SaveJob(mb, dir_, FirstPieces(3), 2, state));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(writer.writes(), 4u);  // A, B, A, C: not one per Submit
  const std::vector<std::pair<uint64_t, bool>> want = {{1, true}, {2, true}, {2, true},
                                                       {1, true}, {1, true}, {3, true}};
  EXPECT_EQ(done, want);
  EXPECT_EQ(LoadResume(state, ma)->have.count(), 4u);
  EXPECT_EQ(LoadResume(state, mb)->have.count(), 3u);
  EXPECT_EQ(LoadResume(state, mc)->have.count(), 1u);
  EXPECT_TRUE(fs::exists(dir_ + "/state/resume/" + engine::ToHex(ma.info_hash) + ".resume"));
  EXPECT_FALSE(fs::exists(dir_ + "/.torrenty"));  // nothing next to the data
}

// A stop drops queued snapshots of checks (optional) but never progress, even when progress
// replaced an optional snapshot of the same torrent in the queue.
TEST_F(ResumeWriterTest, DropOptionalKeepsProgress) {
  engine::Metainfo ma = TwoFiles(), mb = TwoFiles(), mc = TwoFiles();
  mb.info_hash[0] = 0xBB;
  mc.info_hash[0] = 0xCC;
  const ResumeLocation state = ResumeLocation::InStateDir(dir_ + "/state");
  fs::create_directories(dir_ + "/state");
  std::mutex mu;
  std::condition_variable cv;
  bool held = false, release = false;
  ResumeWriter writer([&](uint64_t, const absl::Status&) {
    std::unique_lock<std::mutex> lock(mu);
    held = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  writer.Submit(SaveJob(mc, dir_, FirstPieces(1), 3, state));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return held; });  // the writer is busy with C
  }
  ResumeJob checked_a = SaveJob(ma, dir_, FirstPieces(4), 1, state);
  checked_a.optional = true;
  writer.Submit(std::move(checked_a));
  ResumeJob checked_b = SaveJob(mb, dir_, FirstPieces(4), 2, state);
  checked_b.optional = true;
  writer.Submit(std::move(checked_b));
  writer.Submit(SaveJob(mb, dir_, FirstPieces(3), 2, state));  // progress replaces it
  EXPECT_EQ(writer.DropOptional(), 1u);                        // A only
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_TRUE(absl::IsNotFound(LoadResume(state, ma).status()));
  EXPECT_EQ(LoadResume(state, mb)->have.count(), 3u);
  EXPECT_EQ(LoadResume(state, mc)->have.count(), 1u);
}

TEST_F(ResumeWriterTest, RemovalQueuedAfterASaveWins) {
  const engine::Metainfo meta = TwoFiles();
  ResumeWriter writer;
  writer.Submit(SaveJob(meta, dir_, FirstPieces(2)));
  ASSERT_TRUE(writer.Flush().ok());
  ASSERT_TRUE(LoadResume(dir_, meta).ok());
  writer.Submit(SaveJob(meta, dir_, FirstPieces(3)));
  ResumeJob remove = SaveJob(meta, dir_, engine::Bitfield());
  remove.remove = true;
  writer.Submit(std::move(remove));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_TRUE(absl::IsNotFound(LoadResume(dir_, meta).status()));
}

// A failed save is reported to its torrent and by Flush (once); the other torrents are saved.
TEST_F(ResumeWriterTest, ErrorsAreReportedPerTorrentAndByFlush) {
  engine::Metainfo good = TwoFiles(), bad = TwoFiles();
  bad.info_hash[0] = 0xEE;
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> done;
  ResumeWriter writer([&](uint64_t tag, const absl::Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    done.emplace_back(tag, std::string(st.message()));
  });
  writer.Submit(SaveJob(bad, dir_, FirstPieces(1), 7, ResumeLocation::InStateDir(dir_ + "/gone")));
  writer.Submit(SaveJob(good, dir_, FirstPieces(1), 8));
  const absl::Status st = writer.Flush();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/gone"), std::string_view::npos) << st;
  EXPECT_TRUE(writer.Flush().ok());  // reported once
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].first, 7u);
  EXPECT_FALSE(done[0].second.empty());
  EXPECT_EQ(done[1], (std::pair<uint64_t, std::string>{8, ""}));
  EXPECT_TRUE(LoadResume(dir_, good).ok());
}

// A live save (taken while the torrent runs) stays trusted when only mtimes moved after it, as
// after a kill -9; a clean one does not, and neither does a live one whose file changed size.
TEST_F(ResumeWriterTest, LiveSaveSurvivesLaterWritesButNotResizes) {
  const engine::Metainfo meta = TwoFiles();
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(dir_, meta, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  ResumeWriter writer;
  ResumeJob live = SaveJob(meta, dir_, FirstPieces(1));
  live.live = true;
  writer.Submit(std::move(live));
  ASSERT_TRUE(writer.Flush().ok());
  usleep(20'000);
  std::ofstream(dir_ + "/t/a.bin", std::ios::in | std::ios::out | std::ios::binary) << "y";
  absl::StatusOr<engine::ResumeData> loaded = LoadResume(dir_, meta);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->live);
  EXPECT_EQ(engine::TrustResume(*loaded, StampFiles(dir_, meta)), engine::ResumeTrust::kLive);
  loaded->live = false;
  EXPECT_EQ(engine::TrustResume(*loaded, StampFiles(dir_, meta)), engine::ResumeTrust::kNone);
  loaded->live = true;
  fs::resize_file(dir_ + "/t/a.bin", 10);
  EXPECT_EQ(engine::TrustResume(*loaded, StampFiles(dir_, meta)), engine::ResumeTrust::kNone);
}

// The stamps a save records are the ones the start-up check takes, also for a pad file that
// someone else created (it is stamped, not synced).
TEST_F(ResumeWriterTest, SavedStampsMatchStartupStampsForPadFiles) {
  engine::Metainfo meta = TwoFiles();
  meta.files[1].pad = true;
  fs::create_directories(dir_ + "/t/sub");
  { std::ofstream(dir_ + "/t/a.bin") << std::string(20000, 'a'); }
  { std::ofstream(dir_ + "/t/sub/b.bin") << std::string(30000, 'b'); }
  ASSERT_TRUE(WriteResume(ResumeLocation::InDataDir(dir_), dir_, meta, FirstPieces(1), false).ok());
  absl::StatusOr<engine::ResumeData> loaded = LoadResume(dir_, meta);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->files[0].size, 20000);
  EXPECT_EQ(loaded->files[1].size, 30000);
  EXPECT_EQ(engine::TrustResume(*loaded, StampFiles(dir_, meta)), engine::ResumeTrust::kExact);
}

}  // namespace
}  // namespace torrenty::io
