// Builds a .torrent from a file or directory on disk: walks it, hashes the data with
// blocking reads on a couple of threads, and encodes the result (engine/torrent_builder).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace torrenty::io {

struct CreateOptions {
  std::vector<std::string> trackers;
  int64_t piece_length = 0;  // 0 = engine::DefaultPieceLength; else a power of two >= 16 KiB
  bool is_private = false;
};

// Returns the bencoded torrent for `path`. A regular file (or a symlink to one) gives a
// single-file torrent; a directory gives a multi-file torrent of every regular file under
// it, including empty ones, ordered by relative path bytes. Symlinks and special files
// inside a directory are rejected rather than skipped: silently leaving data out of a
// torrent, or following links out of the tree, would surprise the user more than an error.
[[nodiscard]] absl::StatusOr<std::string> CreateTorrent(const std::string& path,
                                                        const CreateOptions& options);

}  // namespace torrenty::io
