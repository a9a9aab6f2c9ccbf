// Tests for io::DiskIo on a real io_uring: multi-file pieces round-trip, errors name the file,
// and the in-flight limit holds.
#include "io/disk_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/file_store.h"
#include "io/ring.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using ::torrenty::testing::FileSpec;
using ::torrenty::testing::MakeMeta;
using ::torrenty::testing::TempDir;
using ::torrenty::testing::TestData;

std::vector<uint8_t> ReadFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

class DiskIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = Ring::Create(64);
    if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable: " << ring.status();
    ring_ = std::move(*ring);
  }

  // Runs the ring until `done_count_` reaches `want` (or a generous iteration cap).
  void RunUntil(size_t want) {
    for (int i = 0; i < 1000 && results_.size() < want; ++i) {
      ASSERT_TRUE(ring_->RunOnce(100).ok());
    }
    ASSERT_EQ(results_.size(), want);
  }

  DiskIo::DoneFn Recorder() {
    return [this](uint64_t tag, absl::Status s) { results_[tag] = std::move(s); };
  }

  std::unique_ptr<Ring> ring_;
  std::map<uint64_t, absl::Status> results_;
  TempDir tmp_{"torrenty_dio"};
};

// Pieces of 1000 bytes over files of 700, 1500, 0, 3, 2600 bytes: most pieces straddle a file
// boundary, piece 2 covers three files, and a zero-length file sits in the middle.
const std::vector<FileSpec> kFiles = {{{"a.bin"}, 700},
                                      {{"d", "b.bin"}, 1500},
                                      {{"d", "empty"}, 0},
                                      {{"c.bin"}, 3},
                                      {{"d", "e", "f.bin"}, 2600}};

TEST_F(DiskIoTest, WritesEveryPieceAndReadsItBack) {
  auto data = TestData(4803);
  engine::Metainfo m = MakeMeta("multi", kFiles, 1000, true, data);
  ASSERT_EQ(m.num_pieces(), 5u);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());

  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    auto piece = absl::MakeConstSpan(data).subspan(p * 1000, m.PieceSize(p));
    ASSERT_TRUE(io.WritePiece(p, piece, p).ok());
  }
  EXPECT_EQ(io.in_flight(), 5u);
  RunUntil(5);
  EXPECT_EQ(io.in_flight(), 0u);
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;

  // The bytes landed in the right files at the right offsets.
  std::vector<uint8_t> joined;
  for (size_t i = 0; i < m.files.size(); ++i) {
    auto f = ReadFile((*store)->path(i));
    ASSERT_EQ(static_cast<int64_t>(f.size()), m.files[i].length) << (*store)->path(i);
    joined.insert(joined.end(), f.begin(), f.end());
  }
  EXPECT_EQ(joined, data);

  results_.clear();
  std::vector<std::vector<uint8_t>> bufs(m.num_pieces());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    bufs[p].assign(m.PieceSize(p), 0);
    ASSERT_TRUE(io.ReadPiece(p, absl::MakeSpan(bufs[p]), 100 + p).ok());
  }
  RunUntil(5);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    EXPECT_TRUE(results_[100 + p].ok()) << results_[100 + p];
    EXPECT_EQ(engine::Sha1(bufs[p]), m.piece_hashes[p]) << "piece " << p;
  }
}

TEST_F(DiskIoTest, LargePiecesOverSingleFile) {
  auto data = TestData((4 << 20) + 12345, 7);
  engine::Metainfo m =
      MakeMeta("big.bin", {{{}, static_cast<int64_t>(data.size())}}, 1 << 20, false, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder(), 8);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    ASSERT_TRUE(
        io.WritePiece(p, absl::MakeConstSpan(data).subspan(p << 20, m.PieceSize(p)), p).ok());
  }
  RunUntil(m.num_pieces());
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  EXPECT_EQ(ReadFile((*store)->path(0)), data);
}

TEST_F(DiskIoTest, DoneCallbackCanChainTheNextOperation) {
  auto data = TestData(4803, 3);
  engine::Metainfo m = MakeMeta("chain", kFiles, 1000, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  uint32_t next = 1;
  std::vector<absl::Status> statuses;
  DiskIo* iop = nullptr;
  DiskIo io(
      ring_.get(), store->get(),
      [&](uint64_t, absl::Status s) {
        statuses.push_back(s);
        if (next < m.num_pieces()) {
          // max_ops == 1: the finished slot must already be free here.
          const uint32_t p = next++;
          EXPECT_TRUE(
              iop->WritePiece(p, absl::MakeConstSpan(data).subspan(p * 1000, m.PieceSize(p)), p)
                  .ok());
        }
      },
      /*max_ops=*/1);
  iop = &io;
  ASSERT_TRUE(io.WritePiece(0, absl::MakeConstSpan(data).subspan(0, 1000), 0).ok());
  for (int i = 0; i < 1000 && statuses.size() < m.num_pieces(); ++i) {
    ASSERT_TRUE(ring_->RunOnce(100).ok());
  }
  ASSERT_EQ(statuses.size(), m.num_pieces());
  for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(ReadFile((*store)->path(4)), std::vector<uint8_t>(data.begin() + 2203, data.end()));
}

TEST_F(DiskIoTest, PieceSpanningManyTinyFiles) {
  std::vector<FileSpec> files;
  for (int i = 0; i < 60; ++i) files.push_back({{"f" + std::to_string(i)}, i % 3 == 0 ? 0 : 17});
  auto data = TestData(40 * 17, 9);
  engine::Metainfo m = MakeMeta("tiny", files, 512, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder(), 4);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    ASSERT_TRUE(
        io.WritePiece(p, absl::MakeConstSpan(data).subspan(p * 512, m.PieceSize(p)), p).ok());
  }
  RunUntil(m.num_pieces());
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  std::vector<uint8_t> joined;
  for (size_t i = 0; i < m.files.size(); ++i) {
    auto f = ReadFile((*store)->path(i));
    joined.insert(joined.end(), f.begin(), f.end());
  }
  EXPECT_EQ(joined, data);
}

TEST_F(DiskIoTest, OpsLimitIsEnforced) {
  auto data = TestData(4803);
  engine::Metainfo m = MakeMeta("lim", kFiles, 1000, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder(), /*max_ops=*/2);
  auto piece = [&](uint32_t p) {
    return absl::MakeConstSpan(data).subspan(p * 1000, m.PieceSize(p));
  };
  ASSERT_TRUE(io.WritePiece(0, piece(0), 0).ok());
  ASSERT_TRUE(io.WritePiece(1, piece(1), 1).ok());
  absl::Status third = io.WritePiece(2, piece(2), 2);
  EXPECT_TRUE(absl::IsResourceExhausted(third)) << third;
  EXPECT_EQ(io.in_flight(), 2u);
  RunUntil(2);
  EXPECT_EQ(io.in_flight(), 0u);
  EXPECT_TRUE(io.WritePiece(2, piece(2), 2).ok());
  RunUntil(3);
  EXPECT_TRUE(results_[2].ok());
}

TEST_F(DiskIoTest, RejectsBadArguments) {
  auto data = TestData(4803);
  engine::Metainfo m = MakeMeta("bad", kFiles, 1000, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());
  std::vector<uint8_t> buf(1000);
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadPiece(5, absl::MakeSpan(buf), 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadPiece(4, absl::MakeSpan(buf), 0)));  // 803 bytes
  EXPECT_TRUE(absl::IsInvalidArgument(io.WritePiece(0, absl::MakeConstSpan(buf).subspan(1), 0)));
  EXPECT_EQ(io.in_flight(), 0u);
}

TEST_F(DiskIoTest, WriteToReadOnlyStoreNamesTheFile) {
  auto data = TestData(4803);
  engine::Metainfo m = MakeMeta("ro", kFiles, 1000, true, data);
  {
    auto create = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
    ASSERT_TRUE(create.ok()) << create.status();
  }
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kExisting);  // O_RDONLY
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());
  ASSERT_TRUE(io.WritePiece(0, absl::MakeConstSpan(data).subspan(0, 1000), 7).ok());
  RunUntil(1);
  const absl::Status& s = results_[7];
  EXPECT_FALSE(s.ok());
  // Piece 0 covers a.bin then d/b.bin; whichever fails first is named.
  EXPECT_THAT(
      s.message(),
      ::testing::AnyOf(HasSubstr("write " + tmp_.path() + "/ro/a.bin: Bad file descriptor"),
                       HasSubstr("write " + tmp_.path() + "/ro/d/b.bin: Bad file descriptor")));
  EXPECT_EQ(io.in_flight(), 0u);
}

TEST_F(DiskIoTest, ReadOfTruncatedFileIsAnErrorNamingIt) {
  auto data = TestData(4803);
  engine::Metainfo m = MakeMeta("short", kFiles, 1000, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  // Someone truncates the last file behind our back.
  ASSERT_EQ(truncate((*store)->path(4).c_str(), 100), 0);
  DiskIo io(ring_.get(), store->get(), Recorder());
  std::vector<uint8_t> buf(m.PieceSize(4));
  ASSERT_TRUE(io.ReadPiece(4, absl::MakeSpan(buf), 1).ok());
  RunUntil(1);
  EXPECT_TRUE(absl::IsOutOfRange(results_[1])) << results_[1];
  EXPECT_THAT(results_[1].message(), HasSubstr("read " + (*store)->path(4)));
}

}  // namespace
}  // namespace torrenty::io
