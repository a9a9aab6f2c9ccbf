#include "io/session/piece_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace torrenty::io {
namespace {

constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// `length` bytes (a multiple of 4 KiB) at a 2 MiB boundary, advised as huge pages and populated;
// nullptr when the kernel refuses the mapping.
uint8_t* MapHuge(size_t length) {
  // Huge pages need a 2 MiB-aligned start: map the slack too, then give back what lies outside.
  void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto* base = static_cast<uint8_t*>(raw);
  auto* data = reinterpret_cast<uint8_t*>(RoundUp(reinterpret_cast<uintptr_t>(base), kHugePage));
  const auto head = static_cast<size_t>(data - base);  // the slack is split: head + tail
  if (head > 0) ::munmap(base, head);
  if (head < kHugePage) ::munmap(data + length, kHugePage - head);
  // Both are advice: with THP off the buffer keeps 4 KiB pages, and before Linux 5.14 (no
  // MADV_POPULATE_WRITE) they fault in as blocks arrive. Either way the memory works.
  (void)::madvise(data, length, MADV_HUGEPAGE);
  (void)::madvise(data, length, MADV_POPULATE_WRITE);
  return data;
}

void Unmap(uint8_t* data, size_t capacity) { ::munmap(data, RoundUp(capacity, kPage)); }

// Buffers under 2 MiB share huge-page chunks: one chunk holds 2 MiB / slot buffers of one size.
// Buffers die on whichever thread last owned them (a hash worker, a shard, the coordinator), so
// the table is locked; that happens once per buffer created or dropped, never per block, and
// torrents recycle their buffers, so it is rare.
class Slabs {
 public:
  static Slabs& Get() {
    static Slabs* slabs = new Slabs();  // never destroyed: buffers may outlive static teardown
    return *slabs;
  }

  uint8_t* Take(size_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Chunk*>& open = open_[slot];
    if (open.empty()) {
      uint8_t* base = MapHuge(kHugePage);
      if (base == nullptr) return nullptr;
      auto chunk = std::make_unique<Chunk>();
      chunk->base = base;
      chunk->slot = slot;
      const size_t n = kHugePage / slot;
      chunk->free.reserve(n);
      for (size_t i = n; i-- > 0;) chunk->free.push_back(static_cast<uint32_t>(i));
      open.push_back(chunk.get());
      chunks_.emplace(base, std::move(chunk));
    }
    // The fullest chunk first, so emptier ones drain and go back to the kernel: memory stays
    // near what live buffers need even when torrents free theirs in any order.
    auto fullest = std::min_element(open.begin(), open.end(), [](const Chunk* a, const Chunk* b) {
      return a->free.size() < b->free.size();
    });
    Chunk* c = *fullest;
    const uint32_t i = c->free.back();
    c->free.pop_back();
    if (c->free.empty()) open.erase(fullest);
    return c->base + size_t{i} * slot;
  }

  void Give(uint8_t* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto* base = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~(kHugePage - 1));
    auto it = chunks_.find(base);
    if (it == chunks_.end()) return;  // not ours: cannot happen, but never unmap a stranger
    Chunk* c = it->second.get();
    std::vector<Chunk*>& open = open_[c->slot];
    if (c->free.empty()) open.push_back(c);
    c->free.push_back(static_cast<uint32_t>(static_cast<size_t>(p - base) / c->slot));
    if (c->free.size() == kHugePage / c->slot) {
      // Nothing left in it: give the memory back, so a finished torrent's buffers leave RSS.
      std::erase(open, c);
      ::munmap(c->base, kHugePage);
      chunks_.erase(it);
    }
  }

 private:
  struct Chunk {
    uint8_t* base = nullptr;
    size_t slot = 0;
    std::vector<uint32_t> free;  // slot indices
  };
  std::mutex mu_;
  absl::flat_hash_map<uint8_t*, std::unique_ptr<Chunk>> chunks_;
  absl::flat_hash_map<size_t, std::vector<Chunk*>> open_;  // chunks with a free slot, by size
};

void GiveToSlab(uint8_t* data, size_t /*capacity*/) { Slabs::Get().Give(data); }

}  // namespace

engine::PieceBuffer AllocatePieceBuffer(size_t capacity) {
  const size_t length = RoundUp(capacity, kPage);
  if (length >= kHugePage) {
    uint8_t* data = MapHuge(length);
    if (data == nullptr) return engine::PieceBuffer::Allocate(capacity);
    return engine::PieceBuffer::Adopt(data, capacity, &Unmap);
  }
  // A slot size that leaves more than an eighth of the chunk unused stays on the heap.
  if (kSlabs && length >= kSlabMin && kHugePage % length <= kHugePage / 8) {
    if (uint8_t* data = Slabs::Get().Take(length)) {
      return engine::PieceBuffer::Adopt(data, capacity, &GiveToSlab);
    }
  }
  return engine::PieceBuffer::Allocate(capacity);
}

}  // namespace torrenty::io
