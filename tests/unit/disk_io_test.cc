// Tests for io::DiskIo on a real io_uring: multi-file pieces round-trip, errors name the file,
// and the in-flight limit holds.
#include "io/disk/disk_io.h"

#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "engine/base/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/disk/file_store.h"
#include "io/disk/recheck.h"
#include "io/ring/ring.h"
#include "tests/testing/metainfo_fixtures.h"
#include "tests/testing/piece_buffers.h"

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
  void RunUntil(size_t want, int max_iterations = 1000) {
    for (int i = 0; i < max_iterations && results_.size() < want; ++i) {
      ASSERT_TRUE(ring_->RunOnce(100).ok());
    }
    ASSERT_EQ(results_.size(), want);
  }

  DiskIo::DoneFn Recorder() {
    return [this](uint64_t tag, absl::Status s, engine::PieceBuffer buffer) {
      results_[tag] = std::move(s);
      returned_[tag] = std::move(buffer);
    };
  }
  // Writes a copy of `data` as piece `piece`: DiskIo takes an owned buffer.
  static absl::Status Write(DiskIo& io, uint32_t piece, absl::Span<const uint8_t> data,
                            uint64_t tag) {
    engine::PieceBuffer b = testing::BufferOf(data);
    return io.WritePiece(piece, &b, tag);
  }

  std::unique_ptr<Ring> ring_;
  std::map<uint64_t, absl::Status> results_;
  std::map<uint64_t, engine::PieceBuffer> returned_;  // buffers done() handed back
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
    ASSERT_TRUE(Write(io, p, piece, p).ok());
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
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p << 20, m.PieceSize(p)), p).ok());
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
      [&](uint64_t, absl::Status s, engine::PieceBuffer) {
        statuses.push_back(s);
        if (next < m.num_pieces()) {
          // max_ops == 1: the finished slot must already be free here.
          const uint32_t p = next++;
          EXPECT_TRUE(
              Write(*iop, p, absl::MakeConstSpan(data).subspan(p * 1000, m.PieceSize(p)), p).ok());
        }
      },
      /*max_ops=*/1);
  iop = &io;
  ASSERT_TRUE(Write(io, 0, absl::MakeConstSpan(data).subspan(0, 1000), 0).ok());
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
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p * 512, m.PieceSize(p)), p).ok());
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
  ASSERT_TRUE(Write(io, 0, piece(0), 0).ok());
  ASSERT_TRUE(Write(io, 1, piece(1), 1).ok());
  absl::Status third = Write(io, 2, piece(2), 2);
  EXPECT_TRUE(absl::IsResourceExhausted(third)) << third;
  EXPECT_EQ(io.in_flight(), 2u);
  RunUntil(2);
  EXPECT_EQ(io.in_flight(), 0u);
  EXPECT_TRUE(Write(io, 2, piece(2), 2).ok());
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
  EXPECT_TRUE(absl::IsInvalidArgument(Write(io, 0, absl::MakeConstSpan(buf).subspan(1), 0)));
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
  ASSERT_TRUE(Write(io, 0, absl::MakeConstSpan(data).subspan(0, 1000), 7).ok());
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

// A pad file covers all of piece 1 and part of piece 2: nothing is written for its bytes (the
// file does not even exist), and reads give zeros.
TEST_F(DiskIoTest, PadBytesAreNeverWrittenAndReadAsZeros) {
  auto data = TestData(1024 * 3 + 500, 4);
  std::fill(data.begin() + 1024, data.begin() + 2560, 0);
  engine::Metainfo m = MakeMeta(
      "pad", {{{"a.bin"}, 1024}, {{".pad", "1536"}, 1536}, {{"b.bin"}, 1012}}, 1024, true, data);
  m.files[1].pad = true;
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p * 1024, m.PieceSize(p)), p).ok());
  }
  EXPECT_TRUE(results_.empty());  // even the all-pad piece reports through the ring
  RunUntil(m.num_pieces());
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  EXPECT_FALSE(fs::exists(tmp_.path() + "/pad/.pad"));
  EXPECT_EQ(ReadFile((*store)->path(2)), std::vector<uint8_t>(data.begin() + 2560, data.end()));
  results_.clear();
  std::vector<std::vector<uint8_t>> bufs(m.num_pieces());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    bufs[p].assign(m.PieceSize(p), 0xEE);
    ASSERT_TRUE(io.ReadPiece(p, absl::MakeSpan(bufs[p]), 10 + p).ok());
  }
  RunUntil(m.num_pieces());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    EXPECT_TRUE(results_[10 + p].ok()) << results_[10 + p];
    EXPECT_EQ(engine::Sha1(bufs[p]), m.piece_hashes[p]) << "piece " << p;
  }
}

// The read cache loads extents of large pieces: any range inside a piece reads back the same
// bytes as the whole piece, across file boundaries and with pad bytes as zeros.
TEST_F(DiskIoTest, ReadRangeReadsAnyPartOfAPiece) {
  auto data = TestData(1000 + 1560 + 1012, 5);
  std::fill(data.begin() + 1000, data.begin() + 2560, 0);
  engine::Metainfo m = MakeMeta(
      "range", {{{"a.bin"}, 1000}, {{".pad", "1560"}, 1560}, {{"b.bin"}, 1012}}, 2048, true, data);
  m.files[1].pad = true;
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p * 2048, m.PieceSize(p)), p).ok());
  }
  RunUntil(m.num_pieces());
  results_.clear();
  struct Range {
    uint32_t piece;
    int64_t offset, size;
  };
  // Inside a.bin, a.bin into the pad file, inside the pad file, the pad file into b.bin, the
  // last byte of a piece, and all of the last piece.
  const std::vector<Range> ranges = {{0, 10, 900},  {0, 990, 40}, {0, 1200, 600},
                                     {1, 400, 300}, {0, 2047, 1}, {1, 0, 1524}};
  std::vector<std::vector<uint8_t>> bufs(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    bufs[i].assign(ranges[i].size, 0xEE);
    ASSERT_TRUE(
        io.ReadRange(ranges[i].piece, ranges[i].offset, absl::MakeSpan(bufs[i]), 100 + i).ok());
  }
  RunUntil(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_TRUE(results_[100 + i].ok()) << results_[100 + i];
    const auto at = data.begin() + ranges[i].piece * 2048 + ranges[i].offset;
    EXPECT_EQ(bufs[i], std::vector<uint8_t>(at, at + ranges[i].size)) << "range " << i;
  }
  std::vector<uint8_t> buf(100);
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadRange(0, 2000, absl::MakeSpan(buf), 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadRange(1, 1500, absl::MakeSpan(buf), 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadRange(0, -1, absl::MakeSpan(buf), 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadRange(0, 0, absl::MakeSpan(buf).subspan(0, 0), 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(io.ReadRange(2, 0, absl::MakeSpan(buf), 0)));
  EXPECT_EQ(io.in_flight(), 0u);
}

// Slot memory is fixed by max_ops: a torrent that puts 2,000 one-byte files in one piece does
// not make every slot carry 2,000 operations.
TEST_F(DiskIoTest, SlotMemoryDoesNotGrowWithFilesPerPiece) {
  constexpr int kFilesInPiece = 2000;
  std::vector<FileSpec> files;
  for (int i = 0; i < kFilesInPiece; ++i) files.push_back({{"f" + std::to_string(i)}, 1});
  auto data = TestData(kFilesInPiece, 5);
  engine::Metainfo m = MakeMeta("wide", files, 2048, true, data);
  ASSERT_EQ(m.num_pieces(), 1u);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  // Heap in use, counting large blocks that malloc serves with mmap.
  auto heap = [] {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
  };
  const size_t before = heap();
  auto io = std::make_unique<DiskIo>(ring_.get(), store->get(), Recorder(), 64);
  const size_t grown = heap() - before;
  EXPECT_LT(grown, size_t{256} << 10) << "64 slots took " << grown << " bytes";

  // A wave of ring operations per kSubOpsPerSlot files: many more loop turns than usual.
  ASSERT_TRUE(Write(*io, 0, data, 1).ok());
  RunUntil(1, 100'000);
  EXPECT_TRUE(results_[1].ok()) << results_[1];
  std::vector<uint8_t> back(kFilesInPiece, 0);
  ASSERT_TRUE(io->ReadPiece(0, absl::MakeSpan(back), 2).ok());
  RunUntil(2, 100'000);
  EXPECT_TRUE(results_[2].ok()) << results_[2];
  EXPECT_EQ(back, data);
  EXPECT_EQ(ReadFile((*store)->path(1234)), std::vector<uint8_t>{data[1234]});
}

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

// Aligned pieces of a single-file torrent go through the O_DIRECT descriptor.
TEST_F(DiskIoTest, AlignedPiecesAreWrittenWithODirect) {
  constexpr size_t kPiece = 16384;
  std::unique_ptr<uint8_t, FreeDeleter> buf(
      static_cast<uint8_t*>(std::aligned_alloc(4096, 4 * kPiece)));
  auto data = TestData(4 * kPiece, 6);
  std::copy(data.begin(), data.end(), buf.get());
  engine::Metainfo m = MakeMeta("direct.bin", {{{}, 4 * kPiece}}, kPiece, false, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  // Older tmpfs refuses O_DIRECT; the working directory (the build tree) is on a disk.
  std::string here = (fs::current_path() / "torrenty_direct_XXXXXX").string();
  absl::Cleanup remove_here = [&] {
    std::error_code ec;
    if (here.find("XXXXXX") == std::string::npos) fs::remove_all(here, ec);
  };
  if ((*store)->direct_fd(0) < 0 && mkdtemp(here.data()) != nullptr) {
    store = FileStore::Open(here, m, OpenMode::kCreate);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  ASSERT_GE((*store)->direct_fd(0), 0)
      << "neither " << tmp_.path() << " nor " << here << " accepts O_DIRECT";
  DiskIo io(ring_.get(), store->get(), Recorder());
  for (uint32_t p = 0; p < 4; ++p) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(buf.get() + p * kPiece, kPiece), p).ok());
  }
  RunUntil(4);
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  EXPECT_EQ(io.direct_writes(), 4u);
  EXPECT_EQ(io.direct_fallbacks(), 0u);
  EXPECT_EQ(ReadFile((*store)->path(0)), data);
}

// A write owns its buffer while it is in flight and done() hands back that same allocation, so
// the engine can recycle it and nothing else ever points into it.
TEST_F(DiskIoTest, WriteHandsItsBufferBack) {
  auto data = TestData(3000, 7);
  engine::Metainfo m = MakeMeta("back.bin", {{{}, 3000}}, 1000, false, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  DiskIo io(ring_.get(), store->get(), Recorder());
  engine::PieceBuffer b = testing::BufferOf(absl::MakeConstSpan(data).subspan(1000, 1000));
  const uint8_t* address = b.data();
  ASSERT_TRUE(io.WritePiece(1, &b, 5).ok());
  EXPECT_TRUE(b.empty()) << "the operation took the buffer";
  RunUntil(1);
  EXPECT_TRUE(results_[5].ok()) << results_[5];
  ASSERT_FALSE(returned_[5].empty());
  EXPECT_EQ(returned_[5].data(), address);
  EXPECT_EQ(returned_[5].size(), 1000u);

  // A refused write leaves the buffer with the caller.
  engine::PieceBuffer wrong = testing::BufferOf(absl::MakeConstSpan(data).subspan(0, 999));
  EXPECT_TRUE(absl::IsInvalidArgument(io.WritePiece(0, &wrong, 6)));
  EXPECT_FALSE(wrong.empty());
}

// A filesystem that accepts O_DIRECT at open but refuses the write with EINVAL: the piece is
// written buffered instead, and so is every later one for that file.
TEST_F(DiskIoTest, DirectWriteEinvalFallsBackToBuffered) {
  constexpr size_t kPiece = 16384;
  std::unique_ptr<uint8_t, FreeDeleter> buf(
      static_cast<uint8_t*>(std::aligned_alloc(4096, 4 * kPiece)));
  auto data = TestData(4 * kPiece, 7);
  std::copy(data.begin(), data.end(), buf.get());
  engine::Metainfo m = MakeMeta("einval.bin", {{{}, 4 * kPiece}}, kPiece, false, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate);
  ASSERT_TRUE(store.ok()) << store.status();
  // An eventfd answers any write that is not 8 bytes with EINVAL.
  const int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  (*store)->ReplaceDirectFdForTesting(0, efd);
  DiskIo io(ring_.get(), store->get(), Recorder());
  for (uint32_t p = 0; p < 4; ++p) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(buf.get() + p * kPiece, kPiece), p).ok());
  }
  RunUntil(4);
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  EXPECT_EQ(io.direct_fallbacks(), 1u);
  EXPECT_EQ(io.direct_writes(), 0u);
  EXPECT_EQ(ReadFile((*store)->path(0)), data);
}

// File selection: a file that was never created fails only the operations that reach it; the
// recheck counts its pieces as missing instead of failing.
TEST_F(DiskIoTest, FileNeverCreatedFailsOnlyOperationsThatReachIt) {
  auto data = TestData(5000);
  engine::Metainfo m = MakeMeta(
      "sel", {{{"a.bin"}, 1000}, {{"sub", "b.bin"}, 3000}, {{"c.bin"}, 1000}}, 1000, true, data);
  auto store =
      FileStore::Open(tmp_.path(), m, OpenMode::kCreate, std::vector<bool>{true, false, true});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->fd(1), -1);
  DiskIo io(ring_.get(), store->get(), Recorder());
  for (uint32_t p : {0u, 4u}) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p * 1000, 1000), p).ok());
  }
  RunUntil(2);
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  results_.clear();
  std::vector<uint8_t> buf(1000);
  ASSERT_TRUE(io.ReadPiece(4, absl::MakeSpan(buf), 7).ok());
  RunUntil(1);
  EXPECT_TRUE(results_[7].ok()) << results_[7];
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[4]);
  const absl::Status write_b = Write(io, 2, absl::MakeConstSpan(data).subspan(2000, 1000), 8);
  EXPECT_THAT(std::string(write_b.message()), ::testing::HasSubstr("b.bin"));

  absl::StatusOr<engine::Bitfield> have = CheckExistingData(**store, 2);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_EQ(have->count(), 2u);
  EXPECT_TRUE(have->Get(0));
  EXPECT_TRUE(have->Get(4));
}

}  // namespace
}  // namespace torrenty::io
