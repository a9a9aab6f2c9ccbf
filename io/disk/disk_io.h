// Whole-piece reads and writes as io_uring operations, so the ring thread never blocks on disk.
// A piece that spans several files becomes one ring operation per file slice, counted down.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/piece_buffer.h"
#include "engine/metainfo/file_map.h"
#include "io/disk/file_pool.h"
#include "io/disk/file_store.h"
#include "io/metrics/instruments.h"
#include "io/ring/ring.h"

namespace torrenty::io {

class DiskIo {
 public:
  // Called on the ring thread once an operation has fully completed: every slice done, short
  // transfers continued, EINTR/EAGAIN retried. `buffer` is the one WritePiece took (empty for
  // reads). It may issue new operations.
  using DoneFn =
      absl::AnyInvocable<void(uint64_t tag, absl::Status status, engine::PieceBuffer buffer)>;

  // File slices one piece operation keeps in flight at once. A piece over more files is worked
  // through in waves, so memory depends on max_ops only, never on how a torrent lays out files.
  static constexpr size_t kSubOpsPerSlot = 8;

  // `ring` and `store` must outlive this object. Destroy it only when in_flight() == 0: the
  // kernel still holds pointers into the op slots until their completions arrive.
  DiskIo(Ring* ring, const FileStore* store, DoneFn done, size_t max_ops = 64);
  ~DiskIo();
  DiskIo(const DiskIo&) = delete;
  DiskIo& operator=(const DiskIo&) = delete;

  // `buffer->size()` / `buf` must be exactly PieceSize(piece) bytes. A write takes `*buffer` when
  // it returns OK (the operation owns it until done() hands it back) and leaves it otherwise; a
  // read's `buf` must stay valid until done(tag). ResourceExhausted if max_ops operations are
  // already in flight (retry after a done()). InvalidArgument for a bad piece or size. done() is
  // never called from inside these calls. Pad-file bytes are not written, and read back as zeros.
  [[nodiscard]] absl::Status WritePiece(uint32_t piece, engine::PieceBuffer* buffer, uint64_t tag);
  [[nodiscard]] absl::Status ReadPiece(uint32_t piece, absl::Span<uint8_t> buf, uint64_t tag);
  // Reads `buf.size()` bytes of a piece from byte `offset` of the piece: the read cache loads
  // bounded extents of large pieces with it. The range must be non-empty and inside the piece.
  [[nodiscard]] absl::Status ReadRange(uint32_t piece, int64_t offset, absl::Span<uint8_t> buf,
                                       uint64_t tag);

  size_t in_flight() const { return slots_.size() - free_.size(); }
  // Ring writes that went through an O_DIRECT descriptor and completed, and files whose O_DIRECT
  // descriptor was given up after EINVAL (buffered writes from then on). For tests and stats.
  uint64_t direct_writes() const { return direct_writes_; }
  size_t direct_fallbacks() const { return direct_fallbacks_; }

  // Optional: descriptors come from `pool` (one per thread, shared by that thread's DiskIos)
  // instead of the store's fd()/direct_fd(), opened when an operation reaches a file and pinned
  // until its ring operation completes. The pool must outlive this object.
  void set_file_pool(FilePool* pool) { pool_ = pool; }
  // With a pool: while inactive (the default), the descriptors of this torrent are closed as soon
  // as no operation is in flight, so an idle torrent holds none; while active (it has peers)
  // they stay cached in the pool until evicted.
  void set_active(bool active);

  // Optional: operations in flight go up and down in `depth`, and each operation's time from
  // submission to done() is observed in `latency_ns`. Both belong to the ring's thread.
  void set_metrics(metrics::ShardGauge* depth, metrics::ShardHistogram* latency_ns) {
    depth_ = depth;
    latency_ns_ = latency_ns;
  }

 private:
  struct Slot;
  // One ring operation: a file slice of a piece. Owns the Completion the kernel points at.
  struct SubOp {
    Slot* slot = nullptr;
    engine::FileSlice slice;
    int64_t done = 0;                // bytes transferred so far; short transfers continue from here
    bool direct = false;             // the write in flight went to the O_DIRECT descriptor
    FilePool::Entry* pin = nullptr;  // the pool's descriptor the operation in flight uses
    absl::Status open_error;         // the pool could not open the file: report via a nop
    Completion completion;
    void OnComplete(int32_t res, uint32_t flags);
  };
  // One piece operation. Slots (and their SubOps) are allocated up front and recycled, so an
  // operation never allocates.
  struct Slot {
    DiskIo* owner = nullptr;
    uint64_t tag = 0;
    bool write = false;
    uint8_t* buf = nullptr;
    engine::PieceBuffer owned;  // a write's buffer, handed back by done()
    int64_t begin = 0;          // torrent offset of the range's first byte
    int64_t next = 0;           // torrent offset of the first byte no SubOp has taken yet
    int64_t end = 0;            // exclusive
    size_t active = 0;          // SubOps in flight
    absl::Status status;
    std::chrono::steady_clock::time_point started{};  // only read with latency_ns_
    SubOp subs[kSubOpsPerSlot];
    Completion nop;  // reports a piece with nothing to transfer (all pad bytes)
    void OnNop(int32_t res, uint32_t flags);
  };

  absl::Status CheckWholePiece(uint32_t piece, size_t size) const;
  // `owned`, when not null, is taken into the slot once the operation is accepted.
  absl::Status Start(uint32_t piece, int64_t offset, uint8_t* buf, size_t size, bool write,
                     uint64_t tag, engine::PieceBuffer* owned);
  // The file slice that starts at torrent offset `pos`, cut at `end`.
  engine::FileSlice SliceAt(int64_t pos, int64_t end, int64_t range_begin);
  // Gives `sub` the slot's next slice that needs a ring operation (pad slices are handled on the
  // way) and issues it; false when the piece has none left.
  bool TakeNext(SubOp* sub);
  void Issue(SubOp* sub);
  // With a pool: pins the descriptor `sub` needs (the O_DIRECT one when `direct` and the file
  // allows it, else the buffered one) in place of its old pin. kFailed sets sub->open_error;
  // kFull: every descriptor of the pool is pinned, the caller parks the operation.
  enum class Pin { kOk, kFailed, kFull };
  Pin PinFd(SubOp* sub, bool direct, int* fd);
  // The pool has room again: issue the parked operations (in order).
  static void OnRoom(void* self);
  void Unpin(SubOp* sub);
  void SubDone(SubOp* sub, absl::Status status);
  void Finish(Slot* slot);

  Ring* ring_;
  const FileStore* store_;
  DoneFn done_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;  // capacity == slots_.size(), so push_back never allocates
  std::vector<engine::FileSlice> scratch_;  // one slice, reused by SliceAt
  std::vector<uint8_t> no_direct_;          // per file: O_DIRECT failed with EINVAL
  uint64_t direct_writes_ = 0;
  size_t direct_fallbacks_ = 0;
  FilePool* pool_ = nullptr;
  bool active_ = false;
  FilePool::Waiter waiter_;
  std::vector<SubOp*> parked_;  // capacity: every SubOp, so push_back never allocates
  std::vector<SubOp*> unparked_;
  bool in_on_room_ = false;
  bool room_again_ = false;
  metrics::ShardGauge* depth_ = nullptr;
  metrics::ShardHistogram* latency_ns_ = nullptr;
};

}  // namespace torrenty::io
