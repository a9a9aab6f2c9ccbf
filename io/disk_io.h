// Whole-piece reads and writes as io_uring operations, so the ring thread never blocks on disk.
// A piece that spans several files becomes one ring operation per file slice, counted down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/file_map.h"
#include "io/file_store.h"
#include "io/ring.h"

namespace torrenty::io {

class DiskIo {
 public:
  // Called on the ring thread once an operation has fully completed: every slice done, short
  // transfers continued, EINTR/EAGAIN retried. It may issue new operations.
  using DoneFn = absl::AnyInvocable<void(uint64_t tag, absl::Status status)>;

  // `ring` and `store` must outlive this object. Destroy it only when in_flight() == 0: the
  // kernel still holds pointers into the op slots until their completions arrive.
  DiskIo(Ring* ring, const FileStore* store, DoneFn done, size_t max_ops = 64);
  ~DiskIo();
  DiskIo(const DiskIo&) = delete;
  DiskIo& operator=(const DiskIo&) = delete;

  // `data` / `buf` must be exactly PieceSize(piece) bytes and stay valid until done(tag).
  // ResourceExhausted if max_ops operations are already in flight (retry after a done()).
  // InvalidArgument for a bad piece or size. done() is never called from inside these calls.
  [[nodiscard]] absl::Status WritePiece(uint32_t piece, absl::Span<const uint8_t> data,
                                        uint64_t tag);
  [[nodiscard]] absl::Status ReadPiece(uint32_t piece, absl::Span<uint8_t> buf, uint64_t tag);

  size_t in_flight() const { return slots_.size() - free_.size(); }

 private:
  struct Slot;
  // One ring operation: a file slice of a piece. Owns the Completion the kernel points at.
  struct SubOp {
    Slot* slot = nullptr;
    size_t slice = 0;
    int64_t done = 0;  // bytes transferred so far; short transfers continue from here
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
    size_t pending = 0;  // SubOps not yet finished
    absl::Status status;
    std::vector<engine::FileSlice> slices;
    std::vector<SubOp> subs;
  };

  absl::Status Start(uint32_t piece, uint8_t* buf, size_t size, bool write, uint64_t tag);
  void Issue(SubOp* sub);
  void SubDone(SubOp* sub, absl::Status status);

  Ring* ring_;
  const FileStore* store_;
  DoneFn done_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;  // capacity == slots_.size(), so push_back never allocates
};

}  // namespace torrenty::io
