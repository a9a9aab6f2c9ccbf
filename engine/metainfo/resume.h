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
#include "engine/metainfo/metainfo.h"
#include "engine/base/types.h"

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
};

// Resume files are tiny (a bit per piece plus 16 bytes per file); anything larger is not ours.
inline constexpr size_t kMaxResumeFileBytes = 64 << 20;

std::string EncodeResume(const ResumeData& data);

// Decodes and checks that the data belongs to `meta` (same info-hash, piece and file counts).
absl::StatusOr<ResumeData> DecodeResume(absl::string_view bytes, const Metainfo& meta);

// The pieces that can be trusted without a recheck: resume.have when every file's current stamp
// equals the recorded one, else nothing.
Bitfield TrustedPieces(const ResumeData& resume, const std::vector<FileStamp>& current);

}  // namespace torrenty::engine
