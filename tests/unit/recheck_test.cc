// Tests for io::CheckExistingData: complete, corrupted, truncated and never-written data.
#include "io/disk/recheck.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/base/sha1.h"
#include "gtest/gtest.h"
#include "io/disk/file_store.h"
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

// Zeros made by ftruncate are holes with no blocks behind them, but they are the file's bytes:
// when the torrent's hashes say zeros, the pieces are there (a sparse image, a zeroed disk).
TEST(RecheckSparseTest, HolesThatHashAsZerosArePresent) {
  TempDir tmp("torrenty_rc");
  constexpr int64_t kPiece = 64 * 1024;
  // Piece 0: real data then a hole; pieces 1-2: only holes; piece 3: a hole then data at EOF.
  std::vector<uint8_t> data(4 * kPiece, 0);
  const auto head = TestData(1000, 3);
  const auto tail = TestData(500, 5);
  std::copy(head.begin(), head.end(), data.begin());
  std::copy(tail.begin(), tail.end(), data.end() - 500);
  engine::Metainfo m =
      MakeMeta("z.img", {{{}, static_cast<int64_t>(data.size())}}, kPiece, false, data);
  const std::string path = tmp.path() + "/z.img";
  {
    const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(data.size())), 0);
    ASSERT_EQ(pwrite(fd, head.data(), head.size(), 0), 1000);
    ASSERT_EQ(pwrite(fd, tail.data(), tail.size(), static_cast<off_t>(data.size()) - 500), 500);
    close(fd);
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  ASSERT_LT(st.st_blocks * 512, static_cast<int64_t>(data.size()));  // really sparse
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 2);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_TRUE(have->all()) << have->count() << " of " << m.num_pieces();

  // Zeros that the hashes do not expect are still missing data.
  engine::Metainfo other = MakeMeta("z.img", {{{}, static_cast<int64_t>(data.size())}}, kPiece,
                                    false, TestData(static_cast<int64_t>(data.size()), 8));
  auto other_store = FileStore::Open(tmp.path(), other, OpenMode::kExisting);
  ASSERT_TRUE(other_store.ok());
  auto none = CheckExistingData(**other_store, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->count(), 0u);
}

// A file that ends early is missing data, not zeros, even where the torrent's bytes are zeros.
TEST(RecheckSparseTest, ShortFileIsNotTakenForZeros) {
  TempDir tmp("torrenty_rc");
  std::vector<uint8_t> data(3 * 16384, 0);
  engine::Metainfo m =
      MakeMeta("s.img", {{{}, static_cast<int64_t>(data.size())}}, 16384, false, data);
  { std::ofstream(tmp.path() + "/s.img", std::ios::binary) << std::string(16384, '\0'); }
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok());
  auto have = CheckExistingData(**store, 2);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_EQ(have->count(), 1u);
  EXPECT_TRUE(have->Get(0));
}

// Pad files are never on disk; their bytes are zeros in the hash.
TEST(RecheckSparseTest, PadFilesHashAsZerosWithoutExisting) {
  TempDir tmp("torrenty_rc");
  std::vector<uint8_t> data = TestData(3 * 1024, 6);
  std::fill(data.begin() + 1000, data.begin() + 2048, 0);  // a.bin is 1000 bytes, pad 1048
  engine::Metainfo m = MakeMeta(
      "p", {{{"a.bin"}, 1000}, {{".pad", "1048"}, 1048}, {{"b.bin"}, 1024}}, 2048, true, data);
  m.files[1].pad = true;
  fs::create_directories(tmp.path() + "/p");
  {
    std::ofstream(tmp.path() + "/p/a.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()), 1000);
    std::ofstream(tmp.path() + "/p/b.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data() + 2048), 1024);
  }
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  auto have = CheckExistingData(**store, 1);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_TRUE(have->all());
  EXPECT_FALSE(fs::exists(tmp.path() + "/p/.pad"));
}

int64_t PeakRssBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t{ru.ru_maxrss} * 1024;
}

// Memory is bounded per worker whatever the piece length: four workers over 64 MiB pieces of a
// sparse file with real data in every piece (so each piece is read) stay far below one piece.
TEST(RecheckMemoryTest, PeakMemoryDoesNotGrowWithPieceLength) {
  TempDir tmp("torrenty_rc");
  constexpr int64_t kPiece = int64_t{64} << 20;
  constexpr int kPieces = 4;
  engine::Metainfo m;
  m.name = "big.img";
  m.piece_length = kPiece;
  m.total_length = kPiece * kPieces;
  m.files.push_back(engine::FileEntry{.path = {}, .length = m.total_length, .offset = 0});
  const std::string path = tmp.path() + "/big.img";
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, m.total_length), 0);
  const std::vector<uint8_t> zeros(1 << 20, 0);
  const auto marker = TestData(4096, 2);
  for (int p = 0; p < kPieces; ++p) {
    // One 4 KiB block of data at the start of each piece, the rest a hole.
    ASSERT_EQ(pwrite(fd, marker.data(), marker.size(), p * kPiece), 4096);
    engine::Sha1Hasher h;
    h.Update(marker);
    for (int64_t off = 4096; off < kPiece; off += static_cast<int64_t>(zeros.size())) {
      h.Update(absl::MakeConstSpan(zeros).subspan(
          0, static_cast<size_t>(std::min<int64_t>(zeros.size(), kPiece - off))));
    }
    m.piece_hashes.push_back(h.Finish());
  }
  close(fd);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t before = PeakRssBytes();
  auto have = CheckExistingData(**store, 4);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_TRUE(have->all());
  const int64_t growth = PeakRssBytes() - before;
  EXPECT_LT(growth, int64_t{24} << 20) << "peak RSS grew by " << growth << " bytes";
}

}  // namespace
}  // namespace torrenty::io
