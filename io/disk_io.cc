// Piece I/O on the ring: each piece op takes a preallocated slot, issues one read/write per file
// slice, continues short transfers, and reports once when the last slice finishes.
#include "io/disk_io.h"

#include <errno.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace torrenty::io {
namespace {

// Ring::Read/Write take an unsigned length and the kernel caps one transfer below 2 GiB anyway;
// larger slices simply continue as short transfers.
constexpr int64_t kMaxTransfer = int64_t{1} << 30;

// The widest piece, in file slices, decides how many SubOps a slot needs. One sweep over pieces
// and non-empty files (both in offset order) instead of mapping every piece.
size_t MaxSlicesPerPiece(const engine::Metainfo& meta) {
  std::vector<int64_t> ends;  // exclusive end offset of each non-empty file
  for (const engine::FileEntry& f : meta.files) {
    if (f.length > 0) ends.push_back(f.offset + f.length);
  }
  if (ends.empty() || meta.piece_length <= 0) return 1;
  size_t widest = 1;
  size_t first = 0;
  size_t last = 0;
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
    const int64_t begin = int64_t{p} * meta.piece_length;
    const int64_t end = std::min(begin + meta.piece_length, meta.total_length);  // exclusive
    if (end <= begin) break;
    while (first + 1 < ends.size() && ends[first] <= begin) ++first;
    while (last + 1 < ends.size() && ends[last] < end) ++last;
    widest = std::max(widest, last - first + 1);
  }
  return widest;
}

}  // namespace

DiskIo::DiskIo(Ring* ring, const FileStore* store, DoneFn done, size_t max_ops)
    : ring_(ring), store_(store), done_(std::move(done)) {
  const size_t widest = MaxSlicesPerPiece(store_->meta());
  slots_.reserve(max_ops);
  free_.reserve(max_ops);
  for (size_t i = 0; i < max_ops; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->owner = this;
    slot->slices.reserve(widest);
    // Sized once and never resized: the kernel holds pointers to these Completions.
    slot->subs.resize(widest);
    for (SubOp& sub : slot->subs) {
      sub.slot = slot.get();
      sub.completion = MakeCompletion<&SubOp::OnComplete>(&sub);
    }
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
}

DiskIo::~DiskIo() = default;

absl::Status DiskIo::WritePiece(uint32_t piece, absl::Span<const uint8_t> data, uint64_t tag) {
  // The buffer is only read for writes; the slot stores one pointer type for both directions.
  return Start(piece, const_cast<uint8_t*>(data.data()), data.size(), /*write=*/true, tag);
}

absl::Status DiskIo::ReadPiece(uint32_t piece, absl::Span<uint8_t> buf, uint64_t tag) {
  return Start(piece, buf.data(), buf.size(), /*write=*/false, tag);
}

absl::Status DiskIo::Start(uint32_t piece, uint8_t* buf, size_t size, bool write, uint64_t tag) {
  const engine::Metainfo& meta = store_->meta();
  if (piece >= meta.num_pieces()) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", piece, " out of range"));
  }
  if (size != meta.PieceSize(piece)) {
    return absl::InvalidArgumentError(absl::StrCat("buffer for piece ", piece, " has ", size,
                                                   " bytes, want ", meta.PieceSize(piece)));
  }
  if (free_.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", slots_.size(), " disk operations in flight"));
  }
  Slot* slot = free_.back();
  slot->slices.clear();
  store_->map().MapPiece(piece, &slot->slices);
  int64_t covered = 0;
  for (const engine::FileSlice& s : slot->slices) {
    covered += s.length;
    if (store_->fd(s.file_index) < 0) {
      return absl::InternalError(absl::StrCat("no open file for ", store_->path(s.file_index)));
    }
  }
  if (covered != static_cast<int64_t>(size) || slot->slices.empty() ||
      slot->slices.size() > slot->subs.size()) {
    return absl::InternalError(absl::StrCat("piece ", piece, " maps to ", slot->slices.size(),
                                            " slices covering ", covered, " bytes"));
  }

  free_.pop_back();
  slot->tag = tag;
  slot->write = write;
  slot->buf = buf;
  slot->status = absl::OkStatus();
  slot->pending = slot->slices.size();
  for (size_t i = 0; i < slot->slices.size(); ++i) {
    SubOp& sub = slot->subs[i];
    sub.slice = i;
    sub.done = 0;
    Issue(&sub);
  }
  return absl::OkStatus();
}

// O_DIRECT needs offset, length and address aligned to the logical block size; 4 KiB covers every
// device in use (512-byte and 4K-native disks alike).
constexpr uint64_t kDirectAlignment = 4096;

void DiskIo::Issue(SubOp* sub) {
  Slot* slot = sub->slot;
  const engine::FileSlice& s = slot->slices[sub->slice];
  const int fd = store_->fd(s.file_index);
  uint8_t* p = slot->buf + s.range_offset + sub->done;
  const size_t len = static_cast<size_t>(std::min(s.length - sub->done, kMaxTransfer));
  const uint64_t off = static_cast<uint64_t>(s.file_offset + sub->done);
  if (slot->write) {
    // Whole aligned pieces skip the page cache: the kernel DMAs straight from the piece buffer
    // instead of copying it, which is most of the CPU a buffered write costs.
    const int direct = store_->direct_fd(s.file_index);
    const bool aligned = (off | len | reinterpret_cast<uintptr_t>(p)) % kDirectAlignment == 0;
    ring_->Write(direct >= 0 && aligned ? direct : fd, p, len, off, &sub->completion);
  } else {
    ring_->Read(fd, p, len, off, &sub->completion);
  }
}

void DiskIo::SubOp::OnComplete(int32_t res, uint32_t /*flags*/) {
  DiskIo* io = slot->owner;
  const engine::FileSlice& s = slot->slices[slice];
  if (res == -EINTR || res == -EAGAIN) {
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
  done += res;
  if (done < s.length) {
    io->Issue(this);
    return;
  }
  io->SubDone(this, absl::OkStatus());
}

void DiskIo::SubDone(SubOp* sub, absl::Status status) {
  Slot* slot = sub->slot;
  // Keep the first error: later ones are usually the same failure on the next slice.
  if (!status.ok() && slot->status.ok()) slot->status = std::move(status);
  if (--slot->pending > 0) return;
  const uint64_t tag = slot->tag;
  absl::Status result = std::move(slot->status);
  slot->status = absl::OkStatus();
  slot->buf = nullptr;
  // Free the slot before reporting so the callback can immediately issue the next operation.
  free_.push_back(slot);
  done_(tag, std::move(result));
}

}  // namespace torrenty::io
