// The piece-assembly memory budget of one torrent, shared by every shard that downloads it. A
// shard reserves a piece buffer's bytes before it allocates one and gives them back when it frees
// the buffer, so the buffers of all shards together stay within the budget. Lock-free and
// I/O-free, like PieceClaims.
#pragma once

#include <atomic>
#include <cstdint>

namespace torrenty::engine {

class PieceMemory {
 public:
  explicit PieceMemory(int64_t budget_bytes) : budget_(budget_bytes) {}

  int64_t budget() const { return budget_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }

  // Reserves `bytes` for one piece buffer. It fits when the total stays within the budget, or
  // when nothing at all is reserved: a piece larger than the whole budget must still be
  // downloadable, so exactly one such buffer may exist at a time. Memory therefore never exceeds
  // max(budget, one buffer). A refusal is remembered (wanted()) so that shards holding idle
  // buffers give them back.
  [[nodiscard]] bool TryReserve(int64_t bytes) {
    int64_t used = used_.load(std::memory_order_relaxed);
    for (;;) {
      if (used != 0 && used + bytes > budget_) {
        wanted_.store(true, std::memory_order_relaxed);
        return false;
      }
      if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_acq_rel)) {
        wanted_.store(false, std::memory_order_relaxed);
        return true;
      }
    }
  }
  void Release(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_acq_rel); }
  // A reservation was refused since the last one that succeeded.
  bool wanted() const { return wanted_.load(std::memory_order_relaxed); }

 private:
  const int64_t budget_;
  std::atomic<int64_t> used_{0};
  std::atomic<bool> wanted_{false};
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
