// Parsing and validation of .torrent files (BEP 3 metainfo, BEP 12 tracker tiers,
// BEP 27 private flag) into a plain struct the rest of the engine trusts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/types.h"

namespace torrenty::engine {

// Beyond this, a single piece no longer fits comfortably in memory for hashing, and no
// mainstream client creates such torrents.
inline constexpr int64_t kMaxPieceLength = int64_t{256} << 20;
// Caps on metadata size so a hostile torrent cannot make us allocate without bound.
inline constexpr size_t kMaxFiles = 1'000'000;
inline constexpr int64_t kMaxPieces = int64_t{1} << 24;
// Linux PATH_MAX; a longer relative path could not be opened anyway.
inline constexpr size_t kMaxPathLength = 4096;

struct FileEntry {
  std::vector<std::string> path;  // components under the torrent name; empty for single-file
  int64_t length = 0;  // 0 for a symlink, whatever the torrent says (BEP 47)
  int64_t offset = 0;  // offset of its first byte in the torrent's concatenated data
  // BEP 47 attributes. A pad file's bytes are zeros that only align the next file to a piece
  // boundary: it occupies torrent offsets but is never created, shown, requested or read.
  bool pad = false;
  bool executable = false;
  bool hidden = false;
  // Non-empty for a symlink: the target's components, relative to the torrent's folder.
  std::vector<std::string> symlink_path = {};

  bool is_symlink() const { return !symlink_path.empty(); }
};

struct Metainfo {
  std::string name;
  InfoHash info_hash{};
  int64_t piece_length = 0;
  int64_t total_length = 0;
  std::vector<Sha1Digest> piece_hashes;
  std::vector<FileEntry> files;
  bool multi_file = false;
  bool is_private = false;
  std::vector<std::vector<std::string>> trackers;  // BEP 12 tiers from announce-list, else
                                                   // {{announce}}; empty if none
  std::string comment;
  std::string created_by;

  // Bytes of real file content: total_length without pad files.
  int64_t payload_length() const;

  uint32_t num_pieces() const { return static_cast<uint32_t>(piece_hashes.size()); }
  // The last piece is shorter when total_length is not a multiple of piece_length.
  uint32_t PieceSize(uint32_t piece) const;
  // "name" for a single file, "name/a/b" for a file of a multi-file torrent.
  std::string RelativePath(size_t file_index) const;
};

[[nodiscard]] absl::StatusOr<Metainfo> ParseMetainfo(std::string_view torrent_bytes);

// True if `component` can be used as one path element without escaping the download
// directory: not empty, not "." or "..", and free of '/' and NUL. Shared with the
// torrent builder so created torrents obey the same rules.
bool IsSafePathComponent(std::string_view component);

}  // namespace torrenty::engine
