// Tests for io::FileStore: layout on disk, sizes, resume safety and symlink refusal.
#include "io/disk/file_store.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/metainfo/file_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using ::torrenty::testing::FileSpec;
using ::torrenty::testing::MakeMeta;
using ::torrenty::testing::TempDir;
using ::torrenty::testing::TestData;

int64_t FileSize(const std::string& p) {
  struct stat st;
  if (lstat(p.c_str(), &st) != 0) return -1;
  return st.st_size;
}

TEST(FileStoreTest, SingleFileIsCreatedWithItsLength) {
  TempDir tmp("torrenty_fs");
  const std::string out = tmp.path() + "/out";  // missing: kCreate makes it
  auto data = TestData(5000);
  engine::Metainfo m = MakeMeta("single.bin", {{{}, 5000}}, 1024, false, data);
  auto store = FileStore::Open(out, m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_GE((*store)->fd(0), 0);
  EXPECT_EQ((*store)->path(0), out + "/single.bin");
  EXPECT_EQ(FileSize(out + "/single.bin"), 5000);
  EXPECT_EQ((*store)->meta().name, "single.bin");
}

TEST(FileStoreTest, MultiFileWithNestedFoldersAndZeroLengthFile) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(7101);
  engine::Metainfo m = MakeMeta("multi",
                                {{{"a.bin"}, 100},
                                 {{"sub", "deep", "b.bin"}, 5000},
                                 {{"empty.txt"}, 0},
                                 {{"sub", "c.bin"}, 2001}},
                                1024, true, data);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string root = tmp.path() + "/multi";
  EXPECT_EQ(FileSize(root + "/a.bin"), 100);
  EXPECT_EQ(FileSize(root + "/sub/deep/b.bin"), 5000);
  EXPECT_EQ(FileSize(root + "/empty.txt"), 0);
  EXPECT_EQ(FileSize(root + "/sub/c.bin"), 2001);
  EXPECT_GE((*store)->fd(0), 0);
  EXPECT_GE((*store)->fd(1), 0);
  EXPECT_EQ((*store)->fd(2), -1);
  EXPECT_GE((*store)->fd(3), 0);
  EXPECT_EQ((*store)->path(1), root + "/sub/deep/b.bin");

  // Reopening for seeding finds everything.
  store->reset();
  auto seed = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  EXPECT_TRUE(seed.ok()) << seed.status();
}

TEST(FileStoreTest, ExistingFilesAreSetToTheirTorrentLengthKeepingTheirData) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(3000);
  engine::Metainfo m =
      MakeMeta("t", {{{"long.bin"}, 1000}, {{"short.bin"}, 2000}}, 512, true, data);
  fs::create_directories(tmp.path() + "/t");
  {
    std::ofstream(tmp.path() + "/t/long.bin") << std::string(1000, 'L') << std::string(500, 'T');
    std::ofstream(tmp.path() + "/t/short.bin") << std::string(10, 'S');
  }
  auto head = [&](const std::string& f, size_t n) {
    std::ifstream in(tmp.path() + "/t/" + f);
    std::string h(n, '\0');
    in.read(h.data(), static_cast<std::streamsize>(n));
    return h;
  };
  // Seeding opens read-only and changes nothing.
  ASSERT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kExisting).ok());
  EXPECT_EQ(FileSize(tmp.path() + "/t/long.bin"), 1500);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(FileSize(tmp.path() + "/t/long.bin"), 1000);   // the stale tail is gone
  EXPECT_EQ(FileSize(tmp.path() + "/t/short.bin"), 2000);  // extended
  EXPECT_EQ(head("long.bin", 1000), std::string(1000, 'L'));
  EXPECT_EQ(head("short.bin", 10), std::string(10, 'S'));
}

TEST(FileStoreTest, ExistingModeFailsOnMissingFileAndCreatesNothing) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(300);
  engine::Metainfo m = MakeMeta("t", {{{"d", "x.bin"}, 300}}, 256, true, data);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsNotFound(store.status())) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(tmp.path() + "/t"));
  EXPECT_FALSE(fs::exists(tmp.path() + "/t"));

  fs::create_directories(tmp.path() + "/t/d");
  store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(),
            "cannot open " + tmp.path() + "/t/d/x.bin: No such file or directory");
  EXPECT_FALSE(fs::exists(tmp.path() + "/t/d/x.bin"));
}

TEST(FileStoreTest, ExistingModeFailsOnMissingSingleFile) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(10);
  engine::Metainfo m = MakeMeta("s.bin", {{{}, 10}}, 16, false, data);
  auto store = FileStore::Open(tmp.path() + "/nope", m, OpenMode::kExisting);
  EXPECT_FALSE(store.ok());
  EXPECT_FALSE(fs::exists(tmp.path() + "/nope"));
}

TEST(FileStoreTest, SymlinkedTorrentFolderIsRefused) {
  TempDir tmp("torrenty_fs");
  const std::string out = tmp.path() + "/out";
  const std::string elsewhere = tmp.path() + "/elsewhere";
  fs::create_directories(out);
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, out + "/name");
  auto data = TestData(100);
  engine::Metainfo m = MakeMeta("name", {{{"a.bin"}, 100}}, 64, true, data);
  auto store = FileStore::Open(out, m, OpenMode::kCreate);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(out + "/name"));
  EXPECT_THAT(store.status().message(), HasSubstr("symbolic link"));
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

TEST(FileStoreTest, SymlinkedSubfolderIsRefused) {
  TempDir tmp("torrenty_fs");
  const std::string out = tmp.path() + "/out";
  const std::string elsewhere = tmp.path() + "/elsewhere";
  fs::create_directories(out + "/name");
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, out + "/name/sub");
  auto data = TestData(100);
  engine::Metainfo m = MakeMeta("name", {{{"sub", "a.bin"}, 100}}, 64, true, data);
  auto store = FileStore::Open(out, m, OpenMode::kCreate);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(out + "/name/sub"));
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

TEST(FileStoreTest, SymlinkedFileIsRefusedAndTargetUntouched) {
  TempDir tmp("torrenty_fs");
  const std::string out = tmp.path() + "/out";
  const std::string target = tmp.path() + "/victim";
  fs::create_directories(out);
  { std::ofstream(target) << "precious"; }
  fs::create_symlink(target, out + "/s.bin");
  auto data = TestData(4096);
  engine::Metainfo m = MakeMeta("s.bin", {{{}, 4096}}, 1024, false, data);
  auto store = FileStore::Open(out, m, OpenMode::kCreate);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("symbolic link"));
  EXPECT_EQ(FileSize(target), 8);
  // Seeding must not follow it either.
  store = FileStore::Open(out, m, OpenMode::kExisting);
  EXPECT_FALSE(store.ok());
}

TEST(FileStoreTest, FifoIsRefusedWithoutBlocking) {
  TempDir tmp("torrenty_fs");
  ASSERT_EQ(mkfifo((tmp.path() + "/f.bin").c_str(), 0644), 0);
  auto data = TestData(10);
  engine::Metainfo m = MakeMeta("f.bin", {{{}, 10}}, 16, false, data);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("not a regular file"));
}

TEST(FileStoreTest, UnsafeComponentsAreRejected) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(10);
  for (const std::string& bad :
       {std::string(".."), std::string("."), std::string("a/b"), std::string()}) {
    engine::Metainfo m = MakeMeta("t", {{{"ok", bad}, 10}}, 16, true, data);
    auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
    EXPECT_TRUE(absl::IsInvalidArgument(store.status())) << "component '" << bad << "'";
    engine::Metainfo named = MakeMeta(bad, {{{}, 10}}, 16, false, data);
    store = FileStore::Open(tmp.path(), named, OpenMode::kCreate);
    EXPECT_TRUE(absl::IsInvalidArgument(store.status())) << "name '" << bad << "'";
  }
  EXPECT_FALSE(fs::exists(tmp.path() + "/t/ok/b"));
}

// Root ignores file permissions, and CI runs as root: the check runs in a child that drops to
// nobody (65534) first, so it runs everywhere instead of being skipped.
TEST(FileStoreTest, PermissionErrorNamesThePath) {
  TempDir tmp("torrenty_fs");
  const std::string dir = tmp.path();
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);  // the unprivileged child works in it
  auto data = TestData(10);
  engine::Metainfo m = MakeMeta("name", {{{"a.bin"}, 10}}, 16, true, data);
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ||
                           geteuid() == 0)) {
      std::fprintf(stderr, "cannot drop to uid 65534\n");
      _exit(2);
    }
    std::error_code ec;
    fs::create_directories(dir + "/name", ec);
    { std::ofstream(dir + "/name/a.bin") << "x"; }
    if (ec || chmod((dir + "/name/a.bin").c_str(), 0) != 0) _exit(3);
    auto store = FileStore::Open(dir, m, OpenMode::kCreate);
    const std::string want = "cannot open " + dir + "/name/a.bin: Permission denied";
    if (store.ok() || store.status().message() != want) {
      std::fprintf(stderr, "got \"%s\", want \"%s\"\n", store.status().ToString().c_str(),
                   want.c_str());
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's stderr above";
}

TEST(FileStoreTest, PadFilesAreNeverCreatedAndReadAsZeros) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(4096, 2);
  std::fill(data.begin() + 1000, data.begin() + 2048, 0);
  std::fill(data.begin() + 3000, data.end(), 0);
  engine::Metainfo m = MakeMeta(
      "p",
      {{{"a.bin"}, 1000}, {{".pad", "1048"}, 1048}, {{"b.bin"}, 952}, {{".pad", "1096"}, 1096}},
      2048, true, data);
  m.files[1].pad = true;
  m.files[3].pad = true;
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE(fs::exists(tmp.path() + "/p/.pad"));
  EXPECT_EQ((*store)->fd(1), -1);
  EXPECT_EQ((*store)->fd(3), -1);
  EXPECT_EQ(FileSize(tmp.path() + "/p/b.bin"), 952);
  ASSERT_EQ(pwrite((*store)->fd(0), data.data(), 1000, 0), 1000);
  ASSERT_EQ(pwrite((*store)->fd(2), data.data() + 2048, 952, 0), 952);
  std::vector<uint8_t> buf(2048, 0xEE);
  ASSERT_TRUE((*store)->ReadPieceBlocking(0, absl::MakeSpan(buf)).ok());
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[0]);
  std::fill(buf.begin(), buf.end(), 0xEE);
  ASSERT_TRUE((*store)->ReadPieceBlocking(1, absl::MakeSpan(buf)).ok());
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[1]);
  // Seeding needs no pad file on disk either.
  EXPECT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kExisting).ok());
}

TEST(FileStoreTest, ExecutableFilesGetExecuteWhereTheyHaveRead) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(20);
  engine::Metainfo m = MakeMeta("x", {{{"run.sh"}, 10}, {{"data"}, 10}}, 16, true, data);
  m.files[0].executable = true;
  auto mode_of = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
  };
  const mode_t old_mask = umask(027);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
  umask(old_mask);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(mode_of(tmp.path() + "/x/run.sh"), 0750u);
  EXPECT_EQ(mode_of(tmp.path() + "/x/data"), 0640u);
  // An existing file that lost its x bit gets it back when opened for writing.
  store->reset();
  ASSERT_EQ(chmod((tmp.path() + "/x/run.sh").c_str(), 0644), 0);
  ASSERT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kCreate).ok());
  EXPECT_EQ(mode_of(tmp.path() + "/x/run.sh"), 0755u);
}

TEST(FileStoreTest, SymlinksInsideTheFolderAreCreatedOthersSkippedWithAWarning) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(100);
  engine::Metainfo m = MakeMeta("l",
                                {{{"a.bin"}, 100},
                                 {{"sub", "to_a"}, 0},
                                 {{"sub", "dotted"}, 0},
                                 {{"escape"}, 0},
                                 {{"sub", "deep_escape"}, 0}},
                                64, true, data);
  m.files[1].symlink_path = {"a.bin"};
  m.files[2].symlink_path = {"sub", ".", "..", "a.bin"};
  m.files[3].symlink_path = {"..", "victim"};
  m.files[4].symlink_path = {"sub", "..", "..", "..", "etc", "passwd"};
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string root = tmp.path() + "/l";
  EXPECT_EQ(fs::read_symlink(root + "/sub/to_a"), "../a.bin");
  EXPECT_EQ(fs::read_symlink(root + "/sub/dotted"), "../a.bin");
  EXPECT_TRUE(fs::equivalent(root + "/sub/to_a", root + "/a.bin"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root + "/escape")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root + "/sub/deep_escape")));
  ASSERT_EQ((*store)->warnings().size(), 2u);
  EXPECT_THAT((*store)->warnings()[0], HasSubstr(root + "/escape"));
  EXPECT_THAT((*store)->warnings()[0], HasSubstr("not inside the torrent's folder"));
  EXPECT_EQ((*store)->fd(1), -1);
  // Opening again (a resumed download) keeps the links; seeding needs none of them.
  store->reset();
  EXPECT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kCreate).ok());
  EXPECT_EQ(fs::read_symlink(root + "/sub/to_a"), "../a.bin");
  EXPECT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kExisting).ok());
}

TEST(FileStoreTest, ReadPieceBlockingSpansFilesAndReportsShortFiles) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(2500);
  engine::Metainfo m =
      MakeMeta("t", {{{"a"}, 700}, {{"e"}, 0}, {{"b"}, 1000}, {{"c"}, 800}}, 1024, true, data);
  fs::create_directories(tmp.path() + "/t");
  auto write = [&](const std::string& f, int64_t off, int64_t len) {
    std::ofstream o(tmp.path() + "/t/" + f, std::ios::binary);
    o.write(reinterpret_cast<const char*>(data.data() + off), len);
  };
  write("a", 0, 700);
  write("e", 0, 0);
  write("b", 700, 1000);
  write("c", 1700, 500);  // 300 bytes short
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<uint8_t> buf(1024);
  ASSERT_TRUE((*store)->ReadPieceBlocking(0, absl::MakeSpan(buf)).ok());
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[0]);
  ASSERT_TRUE((*store)->ReadPieceBlocking(1, absl::MakeSpan(buf)).ok());
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[1]);
  std::vector<uint8_t> last(m.PieceSize(2));
  absl::Status s = (*store)->ReadPieceBlocking(2, absl::MakeSpan(last));
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(tmp.path() + "/t/c"));
  EXPECT_TRUE(absl::IsInvalidArgument((*store)->ReadPieceBlocking(3, absl::MakeSpan(buf))));
  EXPECT_TRUE(absl::IsInvalidArgument((*store)->ReadPieceBlocking(2, absl::MakeSpan(buf))));
}

// File selection: files not needed are neither created nor required; the ones a shared piece
// touches are (engine/metainfo/file_map.h FilesTouched).
TEST(FileStoreTest, FilesNotNeededAreNotCreated) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(5000);
  engine::Metainfo m = MakeMeta(
      "sel", {{{"a.bin"}, 1000}, {{"sub", "b.bin"}, 3000}, {{"c.bin"}, 1000}}, 1000, true, data);
  const std::vector<bool> needed =
      engine::FilesTouched(m, engine::WantedPieces(m, {true, false, true}));
  EXPECT_EQ(needed, (std::vector<bool>{true, false, true}));
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate, needed);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string root = tmp.path() + "/sel";
  EXPECT_EQ(FileSize(root + "/a.bin"), 1000);
  EXPECT_EQ(FileSize(root + "/c.bin"), 1000);
  EXPECT_FALSE(fs::exists(root + "/sub"));
  EXPECT_EQ((*store)->fd(1), -1);
  store->reset();
  // Seeding what was selected: the missing file is no error unless it is needed.
  EXPECT_TRUE(FileStore::Open(tmp.path(), m, OpenMode::kExisting, needed).ok());
  auto all = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  EXPECT_TRUE(absl::IsNotFound(all.status())) << all.status();
  // Nothing needed, nothing there: opens without creating the torrent's folder.
  TempDir empty("torrenty_fs");
  EXPECT_TRUE(
      FileStore::Open(empty.path(), m, OpenMode::kCreate, std::vector<bool>(3, false)).ok());
  EXPECT_FALSE(fs::exists(empty.path() + "/sel"));
}

TEST(FileStoreTest, FileSharingAPieceWithAWantedFileIsCreated) {
  TempDir tmp("torrenty_fs");
  auto data = TestData(5000);
  // Pieces of 1500 bytes: piece 0 holds a.bin and the start of b.bin, piece 2 the end of b.bin
  // and c.bin, so b.bin must exist to write them even though it is not wanted.
  engine::Metainfo m = MakeMeta(
      "sel", {{{"a.bin"}, 1000}, {{"sub", "b.bin"}, 3000}, {{"c.bin"}, 1000}}, 1500, true, data);
  const std::vector<bool> needed =
      engine::FilesTouched(m, engine::WantedPieces(m, {true, false, true}));
  EXPECT_EQ(needed, (std::vector<bool>{true, true, true}));
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate, needed);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(FileSize(tmp.path() + "/sel/sub/b.bin"), 3000);
}

}  // namespace
}  // namespace torrenty::io
