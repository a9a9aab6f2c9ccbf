// Parsing and validation of .torrent files (BEP 3 metainfo, BEP 12 tracker tiers, BEP 19 and
// BEP 17 web seeds, BEP 27 private flag, BEP 47 file attributes) into a plain struct the rest of
// the engine trusts. Names and paths are cleaned the way libtorrent cleans them, so every
// component is safe to use under the download folder (see CleanPathComponent).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"

namespace torrenty::engine {

// The largest piece length libtorrent and qBittorrent create. Piece memory is bounded by the
// budget in the engine and the disk layer, not by this number.
inline constexpr int64_t kMaxPieceLength = int64_t{512} << 20;
// Caps on metadata size so a hostile torrent cannot make us allocate without bound.
inline constexpr size_t kMaxFiles = 1'000'000;
inline constexpr int64_t kMaxPieces = int64_t{1} << 24;
// Linux PATH_MAX; a longer relative path could not be opened anyway.
inline constexpr size_t kMaxPathLength = 4096;
// The folder under the output directory where resume data lives; no torrent may be named so.
inline constexpr std::string_view kStateDirName = ".torrenty";
// NAME_MAX on Linux file systems; longer components are cut to this (keeping the extension).
inline constexpr size_t kMaxComponentLength = 255;

struct FileEntry {
  std::vector<std::string> path;  // components under the torrent name; empty for single-file
  int64_t length = 0;             // 0 for a symlink, whatever the torrent says (BEP 47)
  int64_t offset = 0;             // offset of its first byte in the torrent's concatenated data
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
  // The `info` dict exactly as encoded (SHA-1 of it is info_hash): what BEP 9 serves to peers.
  std::string info_bytes;
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
  std::vector<std::string> web_seeds;   // BEP 19 url-list, whitespace-trimmed, no duplicates
  std::vector<std::string> http_seeds;  // BEP 17 httpseeds, likewise

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
// torrent builder so created torrents obey the same rules. Every component ParseMetainfo
// returns passes it.
bool IsSafePathComponent(std::string_view component);

// One path component (or the torrent's name) as it is used on disk: leading '/' and '\\'
// dropped; '/', '\\', control characters (C0, DEL, C1), bidirectional-override characters
// and bytes that are not valid UTF-8 each replaced by '_'; cut to kMaxComponentLength bytes
// on a UTF-8 boundary, keeping an extension of up to 32 bytes. Returns "" when nothing usable
// is left ("", ".", ".."), which means: drop the component. Windows-reserved names are kept.
std::string CleanPathComponent(std::string_view component);

}  // namespace torrenty::engine
