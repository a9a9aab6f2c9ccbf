// Piece buffers on transparent huge pages, faulted in before the first block lands.
// Copying blocks into a freshly allocated 16 MiB buffer takes 4,096 page faults, each a trap into
// the kernel (and, in a VM, out of it): measured, that doubled the hot path's time at 4-16 MiB
// pieces (docs/benchmarks.md). A buffer of 2 MiB or more is mapped 2 MiB-aligned, advised as
// transparent huge pages and populated in one madvise call: the same zeroing without a trap per
// page, and 512 times fewer pages for the TLB, the SHA-1 pass and the O_DIRECT write's pinning.
// Smaller buffers of one size share such 2 MiB chunks (a chunk goes back to the kernel when its
// last buffer does), so 1 MiB pieces get the same pages.
#pragma once

#include <cstddef>

#include "engine/base/piece_buffer.h"

namespace torrenty::io {

// Buffers at least this big are mapped, aligned to it and advised as transparent huge pages.
inline constexpr size_t kHugePage = size_t{2} << 20;
// Smaller buffers from this size up share huge-page chunks; below it they come from the heap.
inline constexpr size_t kSlabMin = size_t{16} << 10;
// Under AddressSanitizer buffers that would share a chunk come from the heap instead: slots sit
// back to back, so an overrun into the next buffer would go unseen, while heap buffers have
// redzones.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSlabs = false;
#else
inline constexpr bool kSlabs = true;
#endif

// A buffer of `capacity` bytes aligned for O_DIRECT, its pages resident. Falls back to the heap
// when the kernel refuses the mapping; throws std::bad_alloc only when the heap does too.
[[nodiscard]] engine::PieceBuffer AllocatePieceBuffer(size_t capacity);

}  // namespace torrenty::io
