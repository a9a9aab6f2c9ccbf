#include "io/session/piece_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace torrenty::io {
namespace {

constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void Unmap(uint8_t* data, size_t capacity) { ::munmap(data, RoundUp(capacity, kPage)); }

}  // namespace

engine::PieceBuffer AllocatePieceBuffer(size_t capacity) {
  if (capacity < kHugePage) return engine::PieceBuffer::Allocate(capacity);
  const size_t length = RoundUp(capacity, kPage);
  // Huge pages need a 2 MiB-aligned start: map the slack too, then give back what lies outside.
  void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return engine::PieceBuffer::Allocate(capacity);
  auto* base = static_cast<uint8_t*>(raw);
  auto* data = reinterpret_cast<uint8_t*>(RoundUp(reinterpret_cast<uintptr_t>(base), kHugePage));
  if (data > base) ::munmap(base, static_cast<size_t>(data - base));
  const size_t tail = static_cast<size_t>(base + length + kHugePage - (data + length));
  if (tail > 0) ::munmap(data + length, tail);
  // Both are advice: with THP off the buffer keeps 4 KiB pages, and before Linux 5.14 (no
  // MADV_POPULATE_WRITE) they fault in as blocks arrive. Either way the buffer works.
  (void)::madvise(data, length, MADV_HUGEPAGE);
  (void)::madvise(data, length, MADV_POPULATE_WRITE);
  return engine::PieceBuffer::Adopt(data, capacity, &Unmap);
}

}  // namespace torrenty::io
