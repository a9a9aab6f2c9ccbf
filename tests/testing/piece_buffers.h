// Test data in the form the hash pool and DiskIo take it: an owned, aligned piece buffer.
#pragma once

#include <cstring>

#include "absl/types/span.h"
#include "engine/base/piece_buffer.h"

namespace torrenty::testing {

inline engine::PieceBuffer BufferOf(absl::Span<const uint8_t> bytes) {
  engine::PieceBuffer b = engine::PieceBuffer::Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(b.data(), bytes.data(), bytes.size());
  return b;
}

}  // namespace torrenty::testing
