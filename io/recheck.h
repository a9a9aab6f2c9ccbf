// Start-up verification of data already on disk: hashes every piece on worker threads with
// blocking preads (the event loop is not running yet) and reports which pieces are complete.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/bitfield.h"
#include "io/file_store.h"

namespace torrenty::io {

// Returns a bitfield of the pieces whose bytes on disk match their SHA-1. Pieces whose files are
// too short, or whose range is an unwritten hole of a sparse file, are simply not set. Real I/O
// errors fail the whole check. `progress`, if given, is incremented once per piece checked, so
// another thread can show it. `threads` < 1 counts as 1.
[[nodiscard]] absl::StatusOr<engine::Bitfield> CheckExistingData(
    const FileStore& store, int threads, std::atomic<uint32_t>* progress = nullptr);

}  // namespace torrenty::io
