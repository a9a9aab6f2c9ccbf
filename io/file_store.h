// The files of one torrent under an output directory: opened (or created) safely, one fd per
// file, so the ring thread can issue reads and writes by fd and offset without touching paths.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/file_map.h"
#include "engine/metainfo.h"

namespace torrenty::io {

enum class OpenMode {
  kCreate,    // create missing files and folders (download)
  kExisting,  // files must exist (seed); never create anything
};

class FileStore {
 public:
  // Opens output_dir/<name> (single file) or output_dir/<name>/<path...> (multi-file). Every
  // component below output_dir is opened with openat(O_NOFOLLOW) relative to its parent's fd, so
  // a symlink planted inside the output folder is refused instead of followed. In kCreate mode
  // output_dir itself is created if missing, and files shorter than their torrent length are
  // extended (sparse) with ftruncate; existing data is never truncated, so downloads can resume.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FileStore>> Open(
      const std::string& output_dir, const engine::Metainfo& meta, OpenMode mode);

  ~FileStore();
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  // -1 for zero-length files: they are created but not kept open, since nothing is ever read
  // from or written to them.
  int fd(uint32_t file_index) const { return fds_[file_index]; }
  // The same file opened with O_DIRECT for writes of whole aligned pieces (no page-cache copy),
  // or -1 where the filesystem refuses O_DIRECT or the store is read-only.
  int direct_fd(uint32_t file_index) const { return direct_fds_[file_index]; }
  const engine::FileMap& map() const { return *map_; }
  // The store keeps its own copy, so the caller's Metainfo may die first.
  const engine::Metainfo& meta() const { return meta_; }
  OpenMode mode() const { return mode_; }
  // output_dir/<relative path>, for error messages.
  std::string path(uint32_t file_index) const;

  // Blocking pread of a whole piece into `buf` (exactly PieceSize(piece) bytes), one pread per file
  // slice. For start-up checks only, never on the ring thread. OutOfRange if a file ends before
  // the piece does (data not downloaded yet); other errors name the file.
  [[nodiscard]] absl::Status ReadPieceBlocking(uint32_t piece, absl::Span<uint8_t> buf) const;

 private:
  FileStore(std::string output_dir, const engine::Metainfo& meta, OpenMode mode);
  absl::Status OpenAll();
  absl::StatusOr<int> OpenDir(int parent_fd, const std::string& name, const std::string& shown);
  absl::StatusOr<int> OpenFile(int parent_fd, const std::string& name, const std::string& shown,
                               int64_t length);

  std::string output_dir_;
  engine::Metainfo meta_;
  OpenMode mode_;
  std::unique_ptr<engine::FileMap> map_;  // built from meta_, so it never outlives it
  std::vector<int> fds_;
  std::vector<int> direct_fds_;
};

// Reserves every file's full length on disk (fallocate), so a download cannot run out of space
// halfway. Blocking; call before the event loop starts.
[[nodiscard]] absl::Status PreallocateFiles(const FileStore& store);

}  // namespace torrenty::io
