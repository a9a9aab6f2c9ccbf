// Piece I/O on the ring: each piece op takes a preallocated slot, walks the piece's file slices
// with a fixed number of ring operations, continues short transfers, and reports once when the
// last slice finishes.
#include "io/disk/disk_io.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace torrenty::io {
namespace {

// Ring::Read/Write take an unsigned length and the kernel caps one transfer below 2 GiB anyway;
// larger slices simply continue as short transfers.
constexpr int64_t kMaxTransfer = int64_t{1} << 30;

// O_DIRECT needs offset, length and address aligned to the logical block size; 4 KiB covers every
// device in use (512-byte and 4K-native disks alike).
constexpr uint64_t kDirectAlignment = 4096;

}  // namespace

DiskIo::DiskIo(Ring* ring, const FileStore* store, DoneFn done, size_t max_ops)
    : ring_(ring),
      store_(store),
      done_(std::move(done)),
      no_direct_(store->meta().files.size(), 0) {
  scratch_.reserve(1);
  waiter_.fn = &DiskIo::OnRoom;
  waiter_.ctx = this;
  parked_.reserve(max_ops * kSubOpsPerSlot);
  unparked_.reserve(max_ops * kSubOpsPerSlot);
  slots_.reserve(max_ops);
  free_.reserve(max_ops);
  for (size_t i = 0; i < max_ops; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->owner = this;
    // The kernel holds pointers to these Completions; slots never move (unique_ptr).
    for (SubOp& sub : slot->subs) {
      sub.slot = slot.get();
      sub.completion = MakeCompletion<&SubOp::OnComplete>(&sub);
    }
    slot->nop = MakeCompletion<&Slot::OnNop>(slot.get());
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
}

DiskIo::~DiskIo() {
  if (pool_ == nullptr) return;
  pool_->RemoveWaiter(&waiter_);
  pool_->CloseOwner(this);
}

void DiskIo::OnRoom(void* self) {
  auto* io = static_cast<DiskIo*>(self);
  // Issuing unpins descriptors, which may wake this same waiter again: note it and take another
  // pass instead of recursing into the list being walked.
  if (io->in_on_room_) {
    io->room_again_ = true;
    return;
  }
  io->in_on_room_ = true;
  do {
    io->room_again_ = false;
    io->unparked_.swap(io->parked_);
    for (SubOp* sub : io->unparked_) io->Issue(sub);  // may park some again
    io->unparked_.clear();
  } while (io->room_again_ && !io->parked_.empty());
  io->in_on_room_ = false;
}

void DiskIo::set_active(bool active) {
  active_ = active;
  if (!active_ && pool_ != nullptr && in_flight() == 0) pool_->CloseOwner(this);
}

absl::Status DiskIo::WritePiece(uint32_t piece, engine::PieceBuffer* buffer, uint64_t tag) {
  if (buffer->empty()) return absl::InvalidArgumentError("no buffer to write");
  if (absl::Status st = CheckWholePiece(piece, buffer->size()); !st.ok()) return st;
  return Start(piece, 0, buffer->data(), buffer->size(), /*write=*/true, tag, buffer);
}

absl::Status DiskIo::ReadPiece(uint32_t piece, absl::Span<uint8_t> buf, uint64_t tag) {
  if (absl::Status st = CheckWholePiece(piece, buf.size()); !st.ok()) return st;
  return Start(piece, 0, buf.data(), buf.size(), /*write=*/false, tag, nullptr);
}

absl::Status DiskIo::ReadRange(uint32_t piece, int64_t offset, absl::Span<uint8_t> buf,
                               uint64_t tag) {
  return Start(piece, offset, buf.data(), buf.size(), /*write=*/false, tag, nullptr);
}

absl::Status DiskIo::CheckWholePiece(uint32_t piece, size_t size) const {
  const engine::Metainfo& meta = store_->meta();
  if (piece < meta.num_pieces() && size != meta.PieceSize(piece)) {
    return absl::InvalidArgumentError(absl::StrCat("buffer for piece ", piece, " has ", size,
                                                   " bytes, want ", meta.PieceSize(piece)));
  }
  return absl::OkStatus();
}

engine::FileSlice DiskIo::SliceAt(int64_t pos, int64_t end, int64_t range_begin) {
  // Mapping one byte finds the file without materialising every slice of a wide piece.
  scratch_.clear();
  store_->map().Map(pos, 1, &scratch_);
  if (scratch_.empty()) return engine::FileSlice{.length = 0};
  engine::FileSlice s = scratch_.front();
  const engine::FileEntry& f = store_->meta().files[s.file_index];
  s.length = std::min(f.offset + f.length, end) - pos;
  s.range_offset = pos - range_begin;
  return s;
}

absl::Status DiskIo::Start(uint32_t piece, int64_t offset, uint8_t* buf, size_t size, bool write,
                           uint64_t tag, engine::PieceBuffer* owned) {
  const engine::Metainfo& meta = store_->meta();
  if (piece >= meta.num_pieces()) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", piece, " out of range"));
  }
  const int64_t piece_size = meta.PieceSize(piece);
  if (offset < 0 || size == 0 || offset > piece_size ||
      static_cast<int64_t>(size) > piece_size - offset) {
    return absl::InvalidArgumentError(absl::StrCat("range [", offset, ", +", size, ") of piece ",
                                                   piece, " is outside its ", piece_size,
                                                   " bytes"));
  }
  if (free_.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", slots_.size(), " disk operations in flight"));
  }
  const int64_t begin = int64_t{piece} * meta.piece_length + offset;
  const int64_t end = begin + static_cast<int64_t>(size);
  // Checked up front so that a broken store fails here, not later through done().
  for (int64_t pos = begin; pos < end;) {
    const engine::FileSlice s = SliceAt(pos, end, begin);
    if (s.length <= 0) {
      return absl::InternalError(
          absl::StrCat("piece ", piece, " is not covered by files at ", pos));
    }
    if (!s.pad &&
        (pool_ != nullptr ? !store_->present(s.file_index) : store_->fd(s.file_index) < 0)) {
      return absl::InternalError(absl::StrCat("no open file for ", store_->path(s.file_index)));
    }
    pos += s.length;
  }

  Slot* slot = free_.back();
  free_.pop_back();
  slot->tag = tag;
  slot->write = write;
  // Moving the buffer keeps its address, so `buf` stays valid.
  if (owned != nullptr) slot->owned = std::move(*owned);
  slot->buf = buf;
  slot->begin = begin;
  slot->next = begin;
  slot->end = end;
  slot->active = 0;
  slot->status = absl::OkStatus();
  if (latency_ns_ != nullptr) slot->started = std::chrono::steady_clock::now();
  if (depth_ != nullptr) depth_->Add(1);
  for (SubOp& sub : slot->subs) {
    if (!TakeNext(&sub)) break;
    ++slot->active;
  }
  if (slot->active == 0) ring_->Nop(&slot->nop);
  return absl::OkStatus();
}

bool DiskIo::TakeNext(SubOp* sub) {
  Slot* slot = sub->slot;
  while (slot->next < slot->end) {
    const engine::FileSlice s = SliceAt(slot->next, slot->end, slot->begin);
    if (s.length <= 0) {  // cannot happen after Start's check; stop rather than spin
      slot->next = slot->end;
      break;
    }
    slot->next += s.length;
    if (s.pad) {
      // Pad bytes are zeros by definition: never written, never read from disk.
      if (!slot->write) std::memset(slot->buf + s.range_offset, 0, static_cast<size_t>(s.length));
      continue;
    }
    sub->slice = s;
    sub->done = 0;
    Issue(sub);
    return true;
  }
  return false;
}

void DiskIo::Issue(SubOp* sub) {
  Slot* slot = sub->slot;
  const engine::FileSlice& s = sub->slice;
  uint8_t* p = slot->buf + s.range_offset + sub->done;
  const size_t len = static_cast<size_t>(std::min(s.length - sub->done, kMaxTransfer));
  const uint64_t off = static_cast<uint64_t>(s.file_offset + sub->done);
  sub->direct = false;
  if (pool_ != nullptr) {
    const bool aligned = (off | len | reinterpret_cast<uintptr_t>(p)) % kDirectAlignment == 0;
    int pooled = -1;
    const Pin pin = PinFd(sub, slot->write && aligned, &pooled);
    if (pin == Pin::kFull) {
      // Waits for a descriptor of this shard to be unpinned: the cap holds even under load.
      parked_.push_back(sub);
      pool_->AddWaiter(&waiter_);
      return;
    }
    if (pin == Pin::kFailed) {
      ring_->Nop(&sub->completion);  // reports the error from the ring, never from inside Start
      return;
    }
    if (slot->write) {
      ring_->Write(pooled, p, len, off, &sub->completion);
    } else {
      ring_->Read(pooled, p, len, off, &sub->completion);
    }
    return;
  }
  // Without a pool the store's own descriptors serve. Only then are they read here: a session's
  // coordinator reopens them to sync a completed download while a shard may still be writing a
  // duplicate endgame copy through its pool.
  const int fd = store_->fd(s.file_index);
  if (slot->write) {
    // Whole aligned pieces skip the page cache: the kernel DMAs straight from the piece buffer
    // instead of copying it, which is most of the CPU a buffered write costs.
    const int direct = no_direct_[s.file_index] ? -1 : store_->direct_fd(s.file_index);
    const bool aligned = (off | len | reinterpret_cast<uintptr_t>(p)) % kDirectAlignment == 0;
    sub->direct = direct >= 0 && aligned;
    ring_->Write(sub->direct ? direct : fd, p, len, off, &sub->completion);
  } else {
    ring_->Read(fd, p, len, off, &sub->completion);
  }
}

DiskIo::Pin DiskIo::PinFd(SubOp* sub, bool direct, int* fd) {
  const uint32_t file = sub->slice.file_index;
  FilePool::Entry* old = sub->pin;
  // The new pin is taken before the old one is let go, so a retry on the same file never closes
  // and reopens it.
  absl::StatusOr<FilePool::Entry*> buffered =
      pool_->Acquire(this, file, false, [&] { return store_->OpenFd(file); });
  if (!buffered.ok()) {
    sub->pin = nullptr;
    if (old != nullptr) pool_->Release(old);
    if (absl::IsResourceExhausted(buffered.status())) return Pin::kFull;
    sub->open_error = buffered.status();
    return Pin::kFailed;
  }
  FilePool::Entry* pin = *buffered;
  if (direct && !no_direct_[file] && store_->mode() == OpenMode::kCreate) {
    const int from = FilePool::fd(pin);
    absl::StatusOr<FilePool::Entry*> d =
        pool_->Acquire(this, file, true, [&] { return store_->OpenDirectFd(from); });
    if (d.ok()) {
      pool_->Release(pin);
      pin = *d;
      sub->direct = true;
    } else if (!absl::IsResourceExhausted(d.status())) {
      no_direct_[file] = 1;  // the filesystem refuses O_DIRECT at open: buffered it is
    }
  }
  sub->pin = pin;
  if (old != nullptr) pool_->Release(old);
  *fd = FilePool::fd(pin);
  return Pin::kOk;
}

void DiskIo::Unpin(SubOp* sub) {
  if (sub->pin == nullptr) return;
  pool_->Release(sub->pin);
  sub->pin = nullptr;
}

void DiskIo::Slot::OnNop(int32_t /*res*/, uint32_t /*flags*/) { owner->Finish(this); }

void DiskIo::SubOp::OnComplete(int32_t res, uint32_t /*flags*/) {
  DiskIo* io = slot->owner;
  const engine::FileSlice& s = slice;
  if (!open_error.ok()) {
    io->SubDone(this, std::exchange(open_error, absl::OkStatus()));
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    io->Issue(this);
    return;
  }
  if (res == -EINVAL && direct) {
    // Some filesystems accept O_DIRECT at open and refuse the write (larger logical blocks,
    // FUSE, some network filesystems): the buffered descriptor writes the same bytes.
    if (!io->no_direct_[s.file_index]) {
      io->no_direct_[s.file_index] = 1;
      ++io->direct_fallbacks_;
    }
    io->Issue(this);
    return;
  }
  const char* verb = slot->write ? "write " : "read ";
  if (res < 0) {
    io->SubDone(this,
                absl::ErrnoToStatus(-res, absl::StrCat(verb, io->store_->path(s.file_index))));
    return;
  }
  if (res == 0) {
    // A read at EOF means the file is shorter than the torrent says (truncated behind our back);
    // a write that makes no progress would otherwise loop forever.
    io->SubDone(this, slot->write
                          ? absl::DataLossError(absl::StrCat(verb, io->store_->path(s.file_index),
                                                             ": wrote 0 bytes at offset ",
                                                             s.file_offset + done))
                          : absl::OutOfRangeError(absl::StrCat(
                                verb, io->store_->path(s.file_index), ": file ends at offset ",
                                s.file_offset + done, ", before the piece does")));
    return;
  }
  if (direct) ++io->direct_writes_;
  done += res;
  if (done < s.length) {
    io->Issue(this);
    return;
  }
  io->SubDone(this, absl::OkStatus());
}

void DiskIo::SubDone(SubOp* sub, absl::Status status) {
  Slot* slot = sub->slot;
  Unpin(sub);
  if (!status.ok()) {
    // Keep the first error: later ones are usually the same failure on the next slice.
    if (slot->status.ok()) slot->status = std::move(status);
    slot->next = slot->end;  // issue nothing more for a piece that already failed
  }
  if (TakeNext(sub)) return;
  if (--slot->active > 0) return;
  Finish(slot);
}

void DiskIo::Finish(Slot* slot) {
  const uint64_t tag = slot->tag;
  absl::Status result = std::move(slot->status);
  slot->status = absl::OkStatus();
  slot->buf = nullptr;
  engine::PieceBuffer buffer = std::move(slot->owned);
  if (depth_ != nullptr) depth_->Add(-1);
  if (latency_ns_ != nullptr) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - slot->started)
                        .count();
    latency_ns_->Observe(static_cast<uint64_t>(std::max<int64_t>(ns, 0)));
  }
  // Free the slot before reporting so the callback can immediately issue the next operation.
  free_.push_back(slot);
  // Before done(), which may destroy this object.
  if (pool_ != nullptr && !active_ && in_flight() == 0) pool_->CloseOwner(this);
  done_(tag, std::move(result), std::move(buffer));
}

}  // namespace torrenty::io
