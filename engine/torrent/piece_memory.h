// The piece-assembly memory budget of one torrent, as agreed by every shard that downloads it. A
// shard reserves a piece buffer's bytes before it allocates one and gives them back when it frees
// the buffer, so the buffers of all shards together stay within the budget. The engine only says
// what it asks of the budget; io/ provides the thread-safe one (io/session/shared_piece_memory.h).
// LocalPieceMemory serves a torrent on one shard.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/base/piece_buffer.h"

namespace torrenty::engine {

class PieceMemory {
 public:
  virtual ~PieceMemory() = default;

  // Reserves `bytes` for one piece buffer. It fits when the total stays within the budget, or
  // when nothing at all is reserved: a piece larger than the whole budget must still be
  // downloadable, so exactly one such buffer may exist at a time. Memory therefore never exceeds
  // max(budget, one buffer). A refusal is remembered (wanted()) so that shards holding idle
  // buffers give them back.
  [[nodiscard]] virtual bool TryReserve(int64_t bytes) = 0;
  virtual void Release(int64_t bytes) = 0;
  // A reservation was refused since the last one that succeeded.
  virtual bool wanted() const = 0;
  // The memory of one reserved buffer. io/ overrides it to hand out pre-faulted (and, for big
  // pieces, huge-page) mappings, so blocks are not copied into pages that fault on first touch.
  [[nodiscard]] virtual PieceBuffer Allocate(size_t capacity) {
    return PieceBuffer::Allocate(capacity);
  }
};

// The budget of a torrent that only one shard (or one test) downloads.
class LocalPieceMemory final : public PieceMemory {
 public:
  explicit LocalPieceMemory(int64_t budget_bytes) : budget_(budget_bytes) {}

  int64_t budget() const { return budget_; }
  int64_t used() const { return used_; }

  [[nodiscard]] bool TryReserve(int64_t bytes) override {
    if (used_ != 0 && used_ + bytes > budget_) {
      wanted_ = true;
      return false;
    }
    used_ += bytes;
    wanted_ = false;
    return true;
  }
  void Release(int64_t bytes) override { used_ -= bytes; }
  bool wanted() const override { return wanted_; }

 private:
  const int64_t budget_;
  int64_t used_ = 0;
  bool wanted_ = false;
};

// How many pieces one shard may assemble at once under `budget_bytes` shared by `shards`: the
// budget's worth of pieces split over the shards, and at least one, so a piece larger than the
// budget can still be fetched (PieceMemory then lets exactly one buffer exist).
inline uint32_t PiecesInFlightMax(int64_t budget_bytes, int64_t piece_length, int64_t shards) {
  if (piece_length <= 0 || shards <= 0) return 1;
  const int64_t n = budget_bytes / piece_length / shards;
  return static_cast<uint32_t>(n < 1 ? 1 : (n > 1'000'000 ? 1'000'000 : n));
}

}  // namespace torrenty::engine
