// Start-up verification of data already on disk: hashes every piece on worker threads with
// blocking preads (the event loop is not running yet) and reports which pieces are complete.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "io/disk/file_store.h"

namespace torrenty::io {

// Returns a bitfield of the pieces whose bytes on disk match their SHA-1. Pieces whose files are
// too short are simply not set. Holes of sparse files and pad files count as the zeros they read
// as: they are hashed without reading (a piece entirely in holes costs one cached hash of zeros),
// so zeros written by `truncate` seed like any other data. Each worker hashes in 1 MiB chunks,
// so memory does not grow with the piece length. Real I/O errors fail the whole check. `progress`,
// if given, is incremented once per piece checked, so another thread can show it. `threads` < 1
// counts as 1. Pieces set in `trusted` (from resume data) are reported had without being read.
[[nodiscard]] absl::StatusOr<engine::Bitfield> CheckExistingData(
    const FileStore& store, int threads, std::atomic<uint32_t>* progress = nullptr,
    const engine::Bitfield* trusted = nullptr);

}  // namespace torrenty::io
