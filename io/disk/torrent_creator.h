// Builds a .torrent from a file or directory on disk: walks it, hashes the data with
// blocking reads on a couple of threads, and encodes the result (engine/torrent_builder).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace torrenty::io {

struct CreateOptions {
  std::vector<std::vector<std::string>> tiers;  // BEP 12 tracker tiers; none is fine
  int64_t piece_length = 0;  // 0 = engine::DefaultPieceLength; else a power of two >= 16 KiB
  bool is_private = false;
  std::string comment;
  std::string source;
  std::vector<std::string> web_seeds;
  std::string created_by = "torrenty";
  // Called on the calling thread about every 100 ms while pieces are hashed.
  std::function<void(int64_t hashed_bytes, int64_t total_bytes)> on_progress;
};

// Returns the bencoded torrent for `path`. A regular file (or a symlink to one) gives a
// single-file torrent; a directory gives a multi-file torrent of every regular file under
// it, including empty ones, ordered by relative path bytes. Symbolic links are followed as
// mktorrent does: a link to a file adds that file's content under the link's name, a link to a
// folder adds its tree. A dangling link, a link loop and special files (FIFOs, devices,
// sockets) are rejected rather than skipped: silently leaving data out of a torrent would
// surprise the user more than an error.
[[nodiscard]] absl::StatusOr<std::string> CreateTorrent(const std::string& path,
                                                        const CreateOptions& options);

}  // namespace torrenty::io
