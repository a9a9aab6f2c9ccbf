// Whole small files (.torrent files, session state): read with a size cap, written atomically.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace torrenty::io {

// Reads a regular file of at most max_bytes. A FIFO or device is refused instead of waited on.
[[nodiscard]] absl::StatusOr<std::string> ReadSmallFile(const std::string& path, int64_t max_bytes);

// Replaces `path` with `bytes`: temp file in the same folder, fsync, rename, so a crash leaves
// either the old or the new content, never a torn file.
[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace torrenty::io
