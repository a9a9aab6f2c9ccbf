// Resume data: which pieces are verified on disk, and the size and mtime of every file when that
// was last true. An unchanged folder can then skip the start-up recheck; any change in a stamp
// means the data was touched behind our back and everything is rechecked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::engine {

struct FileStamp {
  int64_t size = -1;  // -1: the file does not exist
  int64_t mtime_ns = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

struct ResumeData {
  InfoHash info_hash{};
  Bitfield have;
  std::vector<FileStamp> files;  // one per Metainfo::files entry
  // Saved while the torrent was running: its files kept being written after the stamps were
  // taken, so after a crash their mtimes differ even though every listed piece is still there.
  bool live = false;
};

// Resume files are tiny (a bit per piece plus 16 bytes per file); anything larger is not ours.
inline constexpr size_t kMaxResumeFileBytes = 64 << 20;

std::string EncodeResume(const ResumeData& data);

// Decodes and checks that the data belongs to `meta` (same info-hash, piece and file counts).
absl::StatusOr<ResumeData> DecodeResume(absl::string_view bytes, const Metainfo& meta);

enum class ResumeTrust {
  kNone,   // rechecked from scratch
  kExact,  // every stamp matches: the pieces are trusted, nothing is hashed
  // Live data (the session died while writing): every file has its recorded size, only mtimes
  // moved. The listed pieces were made durable before the save and a had piece is never
  // rewritten, so they are trusted; only the other pieces are hashed, to find the ones written
  // after the save. A same-size edit behind our back after a crash goes unseen (libtorrent
  // checks no more than sizes).
  kLive,
};
ResumeTrust TrustResume(const ResumeData& resume, const std::vector<FileStamp>& current);

// The pieces that can be trusted without hashing them: resume.have unless TrustResume is kNone.
Bitfield TrustedPieces(const ResumeData& resume, const std::vector<FileStamp>& current);

}  // namespace torrenty::engine
