// Piece buffers come pre-faulted from huge-page mappings (io/session/piece_pages.h):
// checked through the kernel's own account of the mapping, /proc/self/smaps, and mincore().
#include "io/session/piece_pages.h"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "io/session/shared_piece_memory.h"

namespace torrenty::io {
namespace {

struct Mapping {
  bool found = false;
  int64_t rss_kb = 0;
  int64_t anon_huge_kb = 0;
};

// The smaps entry of the mapping that contains `p`.
Mapping MappingOf(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  Mapping m;
  bool inside = false;
  while (std::getline(in, line)) {
    uintptr_t lo = 0;
    uintptr_t hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= addr && addr < hi;
      if (inside) m.found = true;
      continue;
    }
    if (!inside) continue;
    std::istringstream field(line);
    std::string key;
    int64_t kb = 0;
    field >> key >> kb;
    if (key == "Rss:") m.rss_kb = kb;
    if (key == "AnonHugePages:") m.anon_huge_kb = kb;
  }
  return m;
}

bool ThpAvailable() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(in, modes);
  return !modes.empty() && modes.find("[never]") == std::string::npos;
}

bool PopulateSupported() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const bool ok = ::madvise(p, 4096, MADV_POPULATE_WRITE) == 0;
  ::munmap(p, 4096);
  return ok;
}

bool Mapped(const void* p) {
  unsigned char vec = 0;
  return ::mincore(const_cast<void*>(p), 4096, &vec) == 0 || errno != ENOMEM;
}

// The slab tests exist only where there are slabs, and the redzone test only where there are
// none, so that no build reports a skip (CI fails a stage on a skip it does not allow).
#if !defined(__SANITIZE_ADDRESS__)
static_assert(kSlabs);

TEST(PiecePagesTest, SmallBuffersShareAResidentHugePageChunk) {
  if (!PopulateSupported()) GTEST_SKIP() << "kernel without MADV_POPULATE_WRITE (Linux < 5.14)";
  constexpr size_t kMiB = size_t{1} << 20;
  engine::PieceBuffer a = AllocatePieceBuffer(kMiB);
  engine::PieceBuffer b = AllocatePieceBuffer(kMiB);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(a.capacity(), kMiB);
  const auto chunk = [](const uint8_t* p) {
    return reinterpret_cast<uintptr_t>(p) & ~(kHugePage - 1);
  };
  EXPECT_EQ(chunk(a.data()), chunk(b.data())) << "two 1 MiB buffers fill one 2 MiB chunk";
  EXPECT_NE(a.data(), b.data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % kMiB, 0u);
  const Mapping m = MappingOf(a.data());
  ASSERT_TRUE(m.found);
  EXPECT_GE(m.rss_kb, 2048) << "the chunk was not populated before the first block";
  if (ThpAvailable()) {
    EXPECT_GE(m.anon_huge_kb, 2048);
  }
  std::memset(a.data(), 0x5a, a.capacity());
  std::memset(b.data(), 0xa5, b.capacity());
  EXPECT_EQ(a.data()[kMiB - 1], 0x5a);  // neighbours do not overlap

  // The chunk stays while either buffer lives, and goes back to the kernel with the last.
  const uint8_t* at = a.data();
  a = engine::PieceBuffer();
  EXPECT_TRUE(Mapped(at));
  engine::PieceBuffer again = AllocatePieceBuffer(kMiB);  // the freed slot is reused
  EXPECT_EQ(again.data(), at);
  again = engine::PieceBuffer();
  b = engine::PieceBuffer();
  EXPECT_FALSE(Mapped(at));
}

TEST(PiecePagesTest, NewBuffersFillTheFullestChunkSoEmptierOnesCanGoBack) {
  constexpr size_t kSize = size_t{128} << 10;  // 16 to a chunk; no other test uses this size
  constexpr size_t kPerChunk = kHugePage / kSize;
  const auto chunk = [](const engine::PieceBuffer& b) {
    return reinterpret_cast<uintptr_t>(b.data()) & ~(kHugePage - 1);
  };
  std::vector<engine::PieceBuffer> x;
  std::vector<engine::PieceBuffer> y;
  for (size_t i = 0; i < kPerChunk; ++i) x.push_back(AllocatePieceBuffer(kSize));
  for (size_t i = 0; i < kPerChunk; ++i) y.push_back(AllocatePieceBuffer(kSize));
  ASSERT_EQ(chunk(x.front()), chunk(x.back()));
  ASSERT_EQ(chunk(y.front()), chunk(y.back()));
  ASSERT_NE(chunk(x.front()), chunk(y.front()));
  const uintptr_t x_chunk = chunk(x.front());
  x.pop_back();                              // x's chunk: one slot free
  for (int i = 0; i < 3; ++i) y.pop_back();  // y's chunk: three free
  engine::PieceBuffer next = AllocatePieceBuffer(kSize);
  EXPECT_EQ(chunk(next), x_chunk);
}

#else
static_assert(!kSlabs);

TEST(PiecePagesTest, UnderAddressSanitizerAnOverrunOfASmallBufferIsCaught) {
  engine::PieceBuffer b = AllocatePieceBuffer(size_t{1} << 20);
  volatile uint8_t* p = b.data();
  EXPECT_DEATH(p[b.capacity()] = 1, "heap-buffer-overflow");
}
#endif

TEST(PiecePagesTest, OddAndTinySizesStayOnTheHeapAlignedForDirectWrites) {
  // 8 KiB is below the slabs; 1.5 MiB would leave a quarter of each chunk unused.
  for (size_t size : {size_t{8} << 10, size_t{1536} << 10}) {
    engine::PieceBuffer b = AllocatePieceBuffer(size);
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(b.capacity(), size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % engine::PieceBuffer::kAlignment, 0u);
    std::memset(b.data(), 0x5a, b.capacity());
  }
}

// Shards, hash workers and the coordinator make and drop buffers at the same time: slots must
// never be handed out twice or lost under that.
TEST(PiecePagesTest, ThreadsTakeAndGiveSlotsConcurrently) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &bad] {
      std::vector<engine::PieceBuffer> held;
      for (int r = 0; r < kRounds; ++r) {
        engine::PieceBuffer b = AllocatePieceBuffer(size_t{256} << 10);
        std::memset(b.data(), t, 64);
        held.push_back(std::move(b));
        if (held.size() > 5) {
          if (held.front().data()[63] != static_cast<uint8_t>(t)) ++bad;
          held.erase(held.begin());
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(PiecePagesTest, BigBufferIsResidentBeforeTheFirstBlock) {
  if (!PopulateSupported()) GTEST_SKIP() << "kernel without MADV_POPULATE_WRITE (Linux < 5.14)";
  // Not a multiple of the huge page: the tail is in 4 KiB pages.
  const size_t capacity = (size_t{4} << 20) + (size_t{12} << 10);
  engine::PieceBuffer b = AllocatePieceBuffer(capacity);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kHugePage, 0u);
  EXPECT_EQ(b.capacity(), capacity);
  const Mapping m = MappingOf(b.data());
  ASSERT_TRUE(m.found);
  // Not one byte was written, yet every page is there: copying blocks in will not fault.
  EXPECT_GE(m.rss_kb, static_cast<int64_t>(capacity / 1024));
  if (ThpAvailable()) {
    // Huge pages are the kernel's to grant (fragmented memory may refuse); one is enough to show
    // the mapping asked for them, and on an idle test machine all four are granted.
    EXPECT_GE(m.anon_huge_kb, 2048) << "the buffer was not advised as transparent huge pages";
  }
  std::memset(b.data(), 0x5a, b.capacity());
}

TEST(PiecePagesTest, BigBufferIsUnmappedWhenItsLastOwnerDropsIt) {
  const size_t capacity = size_t{8} << 20;
  engine::PieceBuffer b = AllocatePieceBuffer(capacity);
  ASSERT_FALSE(b.empty());
  const uint8_t* data = b.data();
  ASSERT_TRUE(Mapped(data));
  engine::PieceBuffer moved = std::move(b);  // a hash job or write takes it
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(moved.data(), data);
  moved.data()[capacity - 1] = 1;
  EXPECT_TRUE(Mapped(data));
  moved = engine::PieceBuffer();
  EXPECT_FALSE(Mapped(data));
  EXPECT_FALSE(Mapped(data + capacity - 4096));
}

TEST(PiecePagesTest, TheSessionsPieceMemoryHandsOutMappedBuffers) {
  SharedPieceMemory memory(int64_t{32} << 20);
  engine::PieceMemory& budget = memory;
  ASSERT_TRUE(budget.TryReserve(int64_t{16} << 20));
  engine::PieceBuffer b = budget.Allocate(size_t{16} << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kHugePage, 0u);
  budget.Release(int64_t{16} << 20);
}

}  // namespace
}  // namespace torrenty::io
