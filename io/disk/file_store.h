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
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::io {

enum class OpenMode {
  kCreate,    // create missing files and folders (download)
  kExisting,  // files must exist (seed); never create anything
};

enum class FdPolicy {
  kKeepOpen,  // Open leaves every file open until the store dies (short-lived stores, tests)
  kLazy,      // Open checks and prepares every file, then closes it; OpenFd opens on demand
};

class FileStore {
 public:
  // Opens output_dir/<name> (single file) or output_dir/<name>/<path...> (multi-file). Every
  // component below output_dir is opened with openat(O_NOFOLLOW) relative to its parent's fd, so
  // a symlink planted inside the output folder is refused instead of followed. In kCreate mode
  // output_dir itself is created if missing, and every file is set to exactly its torrent length
  // with ftruncate: shorter ones are extended (sparse), longer ones lose their tail, as libtorrent
  // does the first time it opens a file for writing (data inside the length is kept, so downloads
  // resume). Executable files (BEP 47 `x`) get an x bit wherever they have an r bit. Pad files
  // are never created or opened. Symlink entries are created in kCreate mode when their target
  // stays inside the torrent's folder, and skipped with a warning otherwise.
  //
  // File selection: `files_needed` (one flag per file; empty = all needed) names the files a
  // download writes to. A file not needed is opened as above when it exists, but is never
  // created (nor the folders that lead to it) and its absence is no error in either mode: its fd
  // stays -1, and a read or write that reaches it fails (engine/metainfo/file_map.h FilesTouched:
  // every file that shares a piece with a wanted file is needed, so it is created then).
  //
  // With FdPolicy::kLazy every check and change above still happens here (so a missing file or
  // a planted symlink fails the start), but no descriptor stays open: users get one from OpenFd
  // when they need it (a shard through its FilePool), and fd()/direct_fd() are -1.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FileStore>> Open(
      const std::string& output_dir, const engine::Metainfo& meta, OpenMode mode,
      std::vector<bool> files_needed = {}, FdPolicy policy = FdPolicy::kKeepOpen);

  ~FileStore();
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  // -1 for zero-length files, pad files, symlinks and files not needed that do not exist: nothing
  // is ever read from or written to them.
  int fd(uint32_t file_index) const { return fds_[file_index]; }
  // The same file opened with O_DIRECT for writes of whole aligned pieces (no page-cache copy),
  // or -1 where the filesystem refuses O_DIRECT or the store is read-only.
  int direct_fd(uint32_t file_index) const { return direct_fds_[file_index]; }
  // Whether the file was there at Open (fd(i) >= 0 with kKeepOpen): only such files are read or
  // written.
  bool present(uint32_t file_index) const { return present_[file_index] != 0; }
  FdPolicy policy() const { return policy_; }
  // A new descriptor for a present file (the caller owns it), opened like Open does, component by
  // component with O_NOFOLLOW, but never created, resized or chmod-ed. Thread-safe. NotFound if
  // the file vanished since Open, FailedPrecondition if it was never present.
  [[nodiscard]] absl::StatusOr<int> OpenFd(uint32_t file_index) const;
  // An O_DIRECT descriptor for the same inode as `fd` (reopened through /proc/self/fd, so no path
  // walk); an error where the filesystem refuses O_DIRECT or the store is read-only.
  [[nodiscard]] absl::StatusOr<int> OpenDirectFd(int fd) const;
  // fdatasync of every present file (through fresh descriptors with kLazy). Blocking.
  [[nodiscard]] absl::Status SyncData() const;
  // kLazy: opens every present file into fd() until CloseAllFds(), for a ring fsync of them all.
  // Only the thread that owns the store may call these, and nobody else may read fd() meanwhile.
  [[nodiscard]] absl::Status OpenAllFds();
  void CloseAllFds();
  // Takes ownership of `fd` as the O_DIRECT descriptor of a file: lets tests make it fail.
  void ReplaceDirectFdForTesting(uint32_t file_index, int fd);
  // One line per entry that was skipped on purpose (a symlink pointing outside the folder).
  const std::vector<std::string>& warnings() const { return warnings_; }
  const engine::FileMap& map() const { return *map_; }
  // The store keeps its own copy, so the caller's Metainfo may die first.
  const engine::Metainfo& meta() const { return meta_; }
  OpenMode mode() const { return mode_; }
  // output_dir/<relative path>, for error messages.
  std::string path(uint32_t file_index) const;

  // Blocking pread of a whole piece into `buf` (exactly PieceSize(piece) bytes), one pread per file
  // slice (with kLazy, through a descriptor opened for that slice). For start-up checks only, never
  // on the ring thread. OutOfRange if a file ends before the piece does (data not downloaded yet);
  // other errors name the file.
  [[nodiscard]] absl::Status ReadPieceBlocking(uint32_t piece, absl::Span<uint8_t> buf) const;
  // The same for buf.size() bytes starting `offset` bytes into the piece, so a piece can be
  // checked in bounded chunks. Pad-file bytes read as zeros without touching the disk.
  [[nodiscard]] absl::Status ReadBlocking(uint32_t piece, int64_t offset,
                                          absl::Span<uint8_t> buf) const;

 private:
  FileStore(std::string output_dir, const engine::Metainfo& meta, OpenMode mode);
  absl::Status OpenAll();
  // `create`: make what is missing (kCreate mode and a needed file); otherwise a missing entry is
  // NotFound.
  absl::StatusOr<int> OpenDir(int parent_fd, const std::string& name, const std::string& shown,
                              bool create) const;
  // `reopen`: the file was prepared by Open already; only open it.
  absl::StatusOr<int> OpenFile(int parent_fd, const std::string& name, const std::string& shown,
                               const engine::FileEntry& file, bool create,
                               bool reopen = false) const;
  // Opens the folders of `path` below root_fd one at a time, each step with O_NOFOLLOW, and
  // returns the innermost one (the caller owns it), or -1 for a file directly in root_fd.
  // `shown` starts as root_fd's path and ends as the innermost folder's.
  absl::StatusOr<int> OpenParents(int root_fd, const std::vector<std::string>& path,
                                  std::string* shown, bool create) const;

  bool needed(size_t file_index) const {
    return file_index >= files_needed_.size() || files_needed_[file_index];
  }
  absl::Status MakeSymlink(int root_fd, size_t file_index);

  std::string output_dir_;
  engine::Metainfo meta_;
  OpenMode mode_;
  std::vector<bool> files_needed_;
  std::unique_ptr<engine::FileMap> map_;  // built from meta_, so it never outlives it
  std::vector<int> fds_;
  std::vector<int> direct_fds_;
  std::vector<uint8_t> present_;
  FdPolicy policy_ = FdPolicy::kKeepOpen;
  std::vector<std::string> warnings_;
};

// Reserves every file's full length on disk (fallocate), so a download cannot run out of space
// halfway. Blocking; call before the event loop starts.
[[nodiscard]] absl::Status PreallocateFiles(const FileStore& store);

}  // namespace torrenty::io
