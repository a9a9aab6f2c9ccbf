// Tests for io::FilePool (LRU order, cap, pinning, reopen after eviction) and for the lazy
// FileStore + DiskIo that use it: a torrent's files are opened on demand, never more than the
// cap, and an idle torrent holds none.
#include "io/disk/file_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/disk/disk_io.h"
#include "io/disk/file_store.h"
#include "io/ring/ring.h"
#include "tests/testing/metainfo_fixtures.h"
#include "tests/testing/piece_buffers.h"

namespace torrenty::io {
namespace {

using ::testing::HasSubstr;
using ::torrenty::testing::FileSpec;
using ::torrenty::testing::MakeMeta;
using ::torrenty::testing::TempDir;
using ::torrenty::testing::TestData;

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

// Opens /dev/null and remembers how often it was asked to.
struct Opener {
  int calls = 0;
  absl::StatusOr<int> operator()() {
    ++calls;
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
};

const int kOwner = 0;

TEST(FilePoolTest, EvictsTheLeastRecentlyUsedAtTheCap) {
  FilePool pool(3);
  Opener op;
  std::vector<int> fds;
  for (uint32_t f = 0; f < 3; ++f) {
    auto e = pool.Acquire(&kOwner, f, false, [&] { return op(); });
    ASSERT_TRUE(e.ok());
    fds.push_back(FilePool::fd(*e));
    pool.Release(*e);
  }
  EXPECT_EQ(pool.open(), 3u);
  // Touch 0, so 1 is now the least recently used.
  auto again = pool.Acquire(&kOwner, 0, false, [&] { return op(); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(FilePool::fd(*again), fds[0]);
  pool.Release(*again);
  EXPECT_EQ(op.calls, 3);

  auto fourth = pool.Acquire(&kOwner, 3, false, [&] { return op(); });
  ASSERT_TRUE(fourth.ok());
  pool.Release(*fourth);
  EXPECT_EQ(pool.open(), 3u);
  EXPECT_EQ(pool.evictions(), 1u);
  // File 1 was closed; 0 and 2 are still cached (no new open for them).
  auto zero = pool.Acquire(&kOwner, 0, false, [&] { return op(); });
  pool.Release(*zero);
  auto two = pool.Acquire(&kOwner, 2, false, [&] { return op(); });
  pool.Release(*two);
  EXPECT_EQ(op.calls, 4);
  // File 1 comes back through a new open (the file is reopened after its eviction).
  auto one = pool.Acquire(&kOwner, 1, false, [&] { return op(); });
  ASSERT_TRUE(one.ok());
  EXPECT_GE(FilePool::fd(*one), 0);
  EXPECT_TRUE(IsOpen(FilePool::fd(*one)));
  pool.Release(*one);
  EXPECT_EQ(op.calls, 5);
  EXPECT_EQ(pool.open(), 3u);
}

TEST(FilePoolTest, PinnedDescriptorsAreNeverClosedAndTheCapHolds) {
  FilePool pool(2);
  Opener op;
  auto a = pool.Acquire(&kOwner, 0, false, [&] { return op(); });
  auto b = pool.Acquire(&kOwner, 1, false, [&] { return op(); });
  ASSERT_TRUE(a.ok() && b.ok());
  const int fa = FilePool::fd(*a), fb = FilePool::fd(*b);
  // Both pinned: a third file waits instead of closing one in use or going over the cap.
  auto c = pool.Acquire(&kOwner, 2, false, [&] { return op(); });
  EXPECT_TRUE(absl::IsResourceExhausted(c.status())) << c.status();
  EXPECT_EQ(pool.open(), 2u);
  EXPECT_EQ(op.calls, 2);
  EXPECT_TRUE(IsOpen(fa));
  EXPECT_TRUE(IsOpen(fb));
  int woken = 0;
  FilePool::Waiter w;
  w.fn = [](void* ctx) { ++*static_cast<int*>(ctx); };
  w.ctx = &woken;
  pool.AddWaiter(&w);
  pool.AddWaiter(&w);  // once is enough
  // Pinned twice: one release keeps it pinned, so it wakes nobody and eviction skips it.
  auto a2 = pool.Acquire(&kOwner, 0, false, [&] { return op(); });
  ASSERT_EQ(*a2, *a);
  pool.Release(*a2);
  EXPECT_EQ(woken, 0);
  pool.Release(*b);
  EXPECT_EQ(woken, 1);
  auto d = pool.Acquire(&kOwner, 3, false, [&] { return op(); });  // evicts 1, not pinned 0
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(IsOpen(fa));
  EXPECT_EQ(FilePool::fd(*a), fa);
  pool.Release(*d);
  pool.Release(*a);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(pool.open(), 2u);
}

TEST(FilePoolTest, OwnersAndDirectDescriptorsAreSeparateAndCloseOwnerClosesOnlyItsOwn) {
  FilePool pool(8);
  Opener op;
  const int other = 0;
  auto a = pool.Acquire(&kOwner, 0, false, [&] { return op(); });
  auto ad = pool.Acquire(&kOwner, 0, true, [&] { return op(); });
  auto b = pool.Acquire(&other, 0, false, [&] { return op(); });
  ASSERT_TRUE(a.ok() && ad.ok() && b.ok());
  EXPECT_EQ(op.calls, 3);
  const int fa = FilePool::fd(*a), fb = FilePool::fd(*b);
  pool.Release(*a);
  pool.Release(*ad);
  pool.Release(*b);
  pool.CloseOwner(&kOwner);
  EXPECT_EQ(pool.open(), 1u);
  EXPECT_FALSE(IsOpen(fa));
  EXPECT_TRUE(IsOpen(fb));
}

TEST(FilePoolTest, AnOpenErrorIsReturnedAndNothingIsCached) {
  FilePool pool(2);
  auto e = pool.Acquire(&kOwner, 0, false,
                        []() -> absl::StatusOr<int> { return absl::NotFoundError("gone"); });
  EXPECT_TRUE(absl::IsNotFound(e.status()));
  EXPECT_EQ(pool.open(), 0u);
}

TEST(FilePoolTest, MetricsFollowOpenDescriptorsAndEvictions) {
  metrics::ShardGauge open_files;
  metrics::ShardCounter evictions;
  {
    FilePool pool(1);
    pool.set_metrics(&open_files, &evictions);
    Opener op;
    for (uint32_t f = 0; f < 3; ++f) {
      auto e = pool.Acquire(&kOwner, f, false, [&] { return op(); });
      ASSERT_TRUE(e.ok());
      pool.Release(*e);
    }
    EXPECT_EQ(open_files.Read(), 1);
    EXPECT_EQ(evictions.Read(), 2u);
  }
  EXPECT_EQ(open_files.Read(), 0);
}

// Descriptors of this process whose target lies under `dir`.
int FdsUnder(const std::string& dir) {
  int n = 0;
  const std::string canon = std::filesystem::canonical(dir).string();
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string().rfind(canon + "/", 0) == 0) ++n;
  }
  return n;
}

const std::vector<FileSpec> kTen = {
    {{"f0"}, 1000}, {{"f1"}, 1000}, {{"d", "f2"}, 1000},      {{"d", "f3"}, 1000}, {{"f4"}, 1000},
    {{"f5"}, 1000}, {{"f6"}, 1000}, {{"d", "e", "f7"}, 1000}, {{"f8"}, 1000},      {{"f9"}, 1000}};

TEST(LazyFileStoreTest, ChecksEverythingAtOpenButKeepsNothingOpen) {
  TempDir tmp("torrenty_lazy");
  auto data = TestData(10000);
  engine::Metainfo m = MakeMeta("ten", kTen, 1500, true, data);
  auto store = FileStore::Open(tmp.path(), m, OpenMode::kCreate, {}, FdPolicy::kLazy);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(FdsUnder(tmp.path()), 0);
  for (uint32_t i = 0; i < 10; ++i) {
    EXPECT_TRUE((*store)->present(i));
    EXPECT_EQ((*store)->fd(i), -1);
    EXPECT_EQ(std::filesystem::file_size((*store)->path(i)), 1000u);  // created, sized
  }
  auto fd = (*store)->OpenFd(7);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);

  // A file planted as a symlink after Open is refused on reopen, as at Open.
  const std::string victim = tmp.path() + "/victim";
  { std::ofstream(victim) << "x"; }
  std::filesystem::remove((*store)->path(4));
  std::filesystem::create_symlink(victim, (*store)->path(4));
  auto link = (*store)->OpenFd(4);
  EXPECT_FALSE(link.ok());
  EXPECT_THAT(link.status().message(), HasSubstr("symbolic link"));
  // A file that vanished is NotFound and names the file.
  std::filesystem::remove((*store)->path(5));
  auto gone = (*store)->OpenFd(5);
  EXPECT_TRUE(absl::IsNotFound(gone.status())) << gone.status();
  EXPECT_THAT(gone.status().message(), HasSubstr("f5"));

  // Errors still surface at Open: a seed whose file is missing fails to start.
  auto seed = FileStore::Open(tmp.path(), m, OpenMode::kExisting, {}, FdPolicy::kLazy);
  EXPECT_FALSE(seed.ok());
}

class PooledDiskIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = Ring::Create(64);
    if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable: " << ring.status();
    ring_ = std::move(*ring);
  }
  void RunUntil(size_t want) {
    for (int i = 0; i < 1000 && results_.size() < want; ++i) {
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
  TempDir tmp_{"torrenty_pooled"};
};

TEST_F(PooledDiskIoTest, MoreFilesThanTheCapRoundTripAndIdleHoldsNone) {
  auto data = TestData(10000, 3);
  engine::Metainfo m = MakeMeta("ten", kTen, 1500, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate, {}, FdPolicy::kLazy);
  ASSERT_TRUE(store.ok()) << store.status();
  FilePool pool(3);
  DiskIo io(ring_.get(), store->get(), Recorder());
  io.set_file_pool(&pool);
  io.set_active(true);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    auto piece = absl::MakeConstSpan(data).subspan(p * 1500, m.PieceSize(p));
    ASSERT_TRUE(Write(io, p, piece, p).ok());
    RunUntil(p + 1);  // one piece at a time: at most its two files pinned
    EXPECT_LE(pool.open(), 3u);
    EXPECT_LE(FdsUnder(tmp_.path()), 3);
  }
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  EXPECT_GT(pool.evictions(), 0u);
  EXPECT_EQ(pool.open(), 3u);  // active: kept cached

  // Reads after eviction reopen the files.
  results_.clear();
  std::vector<std::vector<uint8_t>> bufs(m.num_pieces());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    bufs[p].assign(m.PieceSize(p), 0);
    ASSERT_TRUE(io.ReadPiece(p, absl::MakeSpan(bufs[p]), 100 + p).ok());
  }
  RunUntil(m.num_pieces());
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    EXPECT_TRUE(results_[100 + p].ok()) << results_[100 + p];
    EXPECT_EQ(engine::Sha1(bufs[p]), m.piece_hashes[p]) << "piece " << p;
  }
  EXPECT_LE(FdsUnder(tmp_.path()), 3 + static_cast<int>(2 * m.num_pieces()));

  // No peers: the torrent's files close at once when it has no disk work...
  io.set_active(false);
  EXPECT_EQ(pool.open(), 0u);
  EXPECT_EQ(FdsUnder(tmp_.path()), 0);
  // ...and as soon as its last operation completes when it had some.
  results_.clear();
  ASSERT_TRUE(io.ReadPiece(0, absl::MakeSpan(bufs[0]), 7).ok());
  RunUntil(1);
  EXPECT_TRUE(results_[7].ok());
  EXPECT_EQ(pool.open(), 0u);
  EXPECT_EQ(FdsUnder(tmp_.path()), 0);
}

TEST_F(PooledDiskIoTest, OperationsWaitForADescriptorWhenEveryOneIsPinned) {
  auto data = TestData(10000, 5);
  engine::Metainfo m = MakeMeta("ten", kTen, 1500, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate, {}, FdPolicy::kLazy);
  ASSERT_TRUE(store.ok()) << store.status();
  FilePool pool(1);  // every piece spans two files: its slices take turns
  DiskIo io(ring_.get(), store->get(), Recorder());
  io.set_file_pool(&pool);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    ASSERT_TRUE(Write(io, p, absl::MakeConstSpan(data).subspan(p * 1500, m.PieceSize(p)), p).ok());
  }
  for (int i = 0; i < 1000 && results_.size() < m.num_pieces(); ++i) {
    ASSERT_TRUE(ring_->RunOnce(100).ok());
    ASSERT_LE(pool.open(), 1u);
    ASSERT_LE(FdsUnder(tmp_.path()), 1);
  }
  ASSERT_EQ(results_.size(), m.num_pieces());
  for (auto& [tag, s] : results_) EXPECT_TRUE(s.ok()) << tag << ": " << s;
  std::vector<uint8_t> buf(m.PieceSize(3));
  results_.clear();
  ASSERT_TRUE(io.ReadPiece(3, absl::MakeSpan(buf), 9).ok());
  RunUntil(1);
  EXPECT_EQ(engine::Sha1(buf), m.piece_hashes[3]);
  EXPECT_EQ(pool.open(), 0u);  // inactive: closed once idle
}

TEST_F(PooledDiskIoTest, AFileThatVanishedFailsItsOperationThroughDone) {
  auto data = TestData(10000, 4);
  engine::Metainfo m = MakeMeta("ten", kTen, 1500, true, data);
  auto store = FileStore::Open(tmp_.path(), m, OpenMode::kCreate, {}, FdPolicy::kLazy);
  ASSERT_TRUE(store.ok()) << store.status();
  FilePool pool(4);
  DiskIo io(ring_.get(), store->get(), Recorder());
  io.set_file_pool(&pool);
  std::filesystem::remove((*store)->path(1));
  std::vector<uint8_t> buf(m.PieceSize(0));
  // Piece 0 covers f0 and f1: the error comes through done(), naming the file.
  ASSERT_TRUE(io.ReadPiece(0, absl::MakeSpan(buf), 1).ok());
  EXPECT_TRUE(results_.empty());
  RunUntil(1);
  EXPECT_TRUE(absl::IsNotFound(results_[1])) << results_[1];
  EXPECT_THAT(results_[1].message(), HasSubstr("f1"));
  EXPECT_EQ(io.in_flight(), 0u);
  EXPECT_EQ(pool.open(), 0u);
}

}  // namespace
}  // namespace torrenty::io
