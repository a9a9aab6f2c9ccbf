// Opens a torrent's files relative to directory fds with O_NOFOLLOW, so nothing inside the output
// folder (a planted symlink, a name like "..") can redirect reads or writes outside it.
#include "io/disk/file_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/disk/durable_sync.h"

namespace torrenty::io {
namespace {

// Closes an fd on scope exit unless released; keeps the error paths below short.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

// The output folder is chosen by the user, so it is trusted and may itself be (or sit under) a
// symlink; only what lies below it comes from the torrent. Creates it like `mkdir -p`.
absl::Status MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", prefix));
    }
  }
  return absl::OkStatus();
}

// An open() that failed with ELOOP/ENOTDIR under O_NOFOLLOW usually means a symlink: say so,
// because "Too many levels of symbolic links" hides that we refused on purpose.
absl::Status OpenError(int err, int parent_fd, const std::string& name, const std::string& shown) {
  struct stat st;
  if ((err == ELOOP || err == ENOTDIR) &&
      fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", shown, ": is a symbolic link (refusing to follow it)"));
  }
  return absl::ErrnoToStatus(err, absl::StrCat("cannot open ", shown));
}

}  // namespace

FileStore::FileStore(std::string output_dir, const engine::Metainfo& meta, OpenMode mode)
    : output_dir_(std::move(output_dir)),
      meta_(meta),
      mode_(mode),
      map_(std::make_unique<engine::FileMap>(meta_)),
      fds_(meta_.files.size(), -1),
      direct_fds_(meta_.files.size(), -1) {}

FileStore::~FileStore() {
  for (int fd : fds_) {
    if (fd >= 0) close(fd);
  }
  for (int fd : direct_fds_) {
    if (fd >= 0) close(fd);
  }
}

absl::StatusOr<std::unique_ptr<FileStore>> FileStore::Open(const std::string& output_dir,
                                                           const engine::Metainfo& meta,
                                                           OpenMode mode,
                                                           std::vector<bool> files_needed,
                                                           FdPolicy policy) {
  std::unique_ptr<FileStore> store(new FileStore(output_dir, meta, mode));
  store->files_needed_ = std::move(files_needed);
  store->policy_ = policy;
  absl::Status s = store->OpenAll();
  if (!s.ok()) return s;
  store->present_.resize(meta.files.size());
  for (size_t i = 0; i < meta.files.size(); ++i) store->present_[i] = store->fds_[i] >= 0;
  if (policy == FdPolicy::kLazy) store->CloseAllFds();
  return store;
}

absl::StatusOr<int> FileStore::OpenFd(uint32_t file_index) const {
  if (file_index >= present_.size() || !present_[file_index]) {
    return absl::FailedPreconditionError(absl::StrCat("no file for ", path(file_index)));
  }
  const engine::FileEntry& file = meta_.files[file_index];
  const std::string out = output_dir_.empty() ? "." : output_dir_;
  FdGuard out_fd(open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (out_fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", out));
  if (!meta_.multi_file) {
    return OpenFile(out_fd.get(), meta_.name, path(0), file, /*create=*/false, /*reopen=*/true);
  }
  std::string shown = JoinPath(output_dir_, meta_.name);
  absl::StatusOr<int> root = OpenDir(out_fd.get(), meta_.name, shown, /*create=*/false);
  if (!root.ok()) return root.status();
  FdGuard root_fd(*root);
  absl::StatusOr<int> parent_fd = OpenParents(root_fd.get(), file.path, &shown, false);
  if (!parent_fd.ok()) return parent_fd.status();
  FdGuard dir(*parent_fd);
  const int parent = *parent_fd >= 0 ? *parent_fd : root_fd.get();
  return OpenFile(parent, file.path.back(), JoinPath(shown, file.path.back()), file,
                  /*create=*/false, /*reopen=*/true);
}

absl::StatusOr<int> FileStore::OpenDirectFd(int fd) const {
  if (mode_ != OpenMode::kCreate) return absl::FailedPreconditionError("read-only store");
  // Reopening through /proc/self/fd reaches exactly the inode already opened safely (no path
  // walk, no symlink to follow). tmpfs and some others refuse O_DIRECT: buffered it is, then.
  const std::string self = absl::StrCat("/proc/self/fd/", fd);
  const int direct = open(self.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (direct < 0) return absl::ErrnoToStatus(errno, "O_DIRECT");
  return direct;
}

absl::Status FileStore::SyncData() const {
  const size_t files = static_cast<size_t>(
      std::count_if(present_.begin(), present_.end(), [](uint8_t p) { return p != 0; }));
  std::optional<dev_t> synced_fs;  // set once a syncfs covered the first file's filesystem
  for (uint32_t i = 0; i < present_.size(); ++i) {
    if (!present_[i]) continue;
    FdGuard owned(-1);
    int fd = fds_[i];
    if (policy_ == FdPolicy::kLazy) {
      absl::StatusOr<int> opened = OpenFd(i);
      if (!opened.ok()) return opened.status();
      owned.reset(*opened);
      fd = *opened;
    }
    if (fd < 0) continue;
    if (files >= kSyncfsFilesMin && !synced_fs.has_value()) {
      absl::StatusOr<dev_t> dev = SyncFilesystemOf(fd, path(i));
      if (!dev.ok()) return dev.status();
      synced_fs = *dev;
    }
    if (absl::Status st = SyncFileUnlessOn(fd, synced_fs, path(i)); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status FileStore::OpenAllFds() {
  for (uint32_t i = 0; i < present_.size(); ++i) {
    if (!present_[i] || fds_[i] >= 0) continue;
    absl::StatusOr<int> fd = OpenFd(i);
    if (!fd.ok()) {
      CloseAllFds();
      return fd.status();
    }
    fds_[i] = *fd;
  }
  return absl::OkStatus();
}

void FileStore::CloseAllFds() {
  for (int& fd : fds_) {
    if (fd >= 0) close(std::exchange(fd, -1));
  }
  for (int& fd : direct_fds_) {
    if (fd >= 0) close(std::exchange(fd, -1));
  }
}

std::string FileStore::path(uint32_t file_index) const {
  return JoinPath(output_dir_, meta_.RelativePath(file_index));
}

absl::StatusOr<int> FileStore::OpenDir(int parent_fd, const std::string& name,
                                       const std::string& shown, bool create) const {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(parent_fd, name.c_str(), kFlags);
  if (fd < 0 && errno == ENOENT && create) {
    // EEXIST: someone else created it in between; the O_NOFOLLOW open below still checks it.
    if (mkdirat(parent_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", shown));
    }
    fd = openat(parent_fd, name.c_str(), kFlags);
  }
  if (fd < 0) return OpenError(errno, parent_fd, name, shown);
  return fd;
}

absl::StatusOr<int> FileStore::OpenFile(int parent_fd, const std::string& name,
                                        const std::string& shown, const engine::FileEntry& file,
                                        bool create, bool reopen) const {
  // O_NONBLOCK so that a FIFO planted under the file's name cannot hang open(); it is cleared
  // again below because io_uring would turn it into -EAGAIN for regular file I/O.
  int flags = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  flags |= mode_ == OpenMode::kCreate ? O_RDWR : O_RDONLY;
  if (create) flags |= O_CREAT;
  FdGuard fd(openat(parent_fd, name.c_str(), flags, 0644));
  if (fd.get() < 0) return OpenError(errno, parent_fd, name, shown);

  struct stat st;
  if (fstat(fd.get(), &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", shown));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", shown, ": not a regular file"));
  }
  const int fl = fcntl(fd.get(), F_GETFL);
  if (fl < 0 || fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("fcntl ", shown));
  }
  if (mode_ != OpenMode::kCreate || reopen) return fd.release();
  // Bytes past the torrent's length would survive a "complete" download as a stale tail.
  if (st.st_size != file.length && ftruncate(fd.get(), file.length) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("cannot set the size of ", shown, " to ", file.length, " bytes"));
  }
  if (file.executable) {
    // The r bits already carry the umask the file was created under; x follows them.
    const mode_t perm = st.st_mode & 07777;
    const mode_t want = perm | ((perm & 0444) >> 2);
    if (want != perm && fchmod(fd.get(), want) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("chmod ", shown));
    }
  }
  return fd.release();
}

absl::StatusOr<int> FileStore::OpenParents(int root_fd, const std::vector<std::string>& path,
                                           std::string* shown, bool create) const {
  FdGuard dir(-1);
  int parent = root_fd;
  for (size_t c = 0; c + 1 < path.size(); ++c) {
    *shown = JoinPath(*shown, path[c]);
    absl::StatusOr<int> sub = OpenDir(parent, path[c], *shown, create);
    if (!sub.ok()) return sub.status();
    dir.reset(*sub);
    parent = dir.get();
  }
  return dir.release();
}

absl::Status FileStore::MakeSymlink(int root_fd, size_t file_index) {
  const engine::FileEntry& file = meta_.files[file_index];
  const std::string shown = path(static_cast<uint32_t>(file_index));
  // Resolve the target lexically against the torrent's folder; it may not climb out of it.
  std::vector<const std::string*> resolved;
  bool escapes = false;
  for (const std::string& c : file.symlink_path) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (resolved.empty()) {
        escapes = true;
        break;
      }
      resolved.pop_back();
      continue;
    }
    if (c.find('/') != std::string::npos || c.find('\0') != std::string::npos) {
      escapes = true;
      break;
    }
    resolved.push_back(&c);
  }
  if (escapes || resolved.empty()) {
    warnings_.push_back(absl::StrCat("skipping symbolic link ", shown, ": its target \"",
                                     absl::StrJoin(file.symlink_path, "/"),
                                     "\" is not inside the torrent's folder"));
    return absl::OkStatus();
  }
  std::string target;
  for (size_t c = 0; c + 1 < file.path.size(); ++c) target += "../";
  for (size_t c = 0; c < resolved.size(); ++c) {
    if (c > 0) target += "/";
    target += *resolved[c];
  }

  std::string dir_shown = JoinPath(output_dir_, meta_.name);
  absl::StatusOr<int> parent_fd = OpenParents(root_fd, file.path, &dir_shown, /*create=*/true);
  if (!parent_fd.ok()) return parent_fd.status();
  FdGuard dir(*parent_fd);
  const int parent = *parent_fd >= 0 ? *parent_fd : root_fd;
  const std::string& name = file.path.back();
  if (symlinkat(target.c_str(), parent, name.c_str()) == 0) return absl::OkStatus();
  if (errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create symbolic link ", shown));
  }
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode)) {
    warnings_.push_back(
        absl::StrCat("skipping symbolic link ", shown, ": something else already exists there"));
    return absl::OkStatus();
  }
  char existing[PATH_MAX];
  const ssize_t n = readlinkat(parent, name.c_str(), existing, sizeof(existing));
  if (n >= 0 && std::string_view(existing, static_cast<size_t>(n)) == target) {
    return absl::OkStatus();
  }
  // A link of ours from an older version of the torrent: replace it, it is only a name.
  if (unlinkat(parent, name.c_str(), 0) != 0 ||
      symlinkat(target.c_str(), parent, name.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create symbolic link ", shown));
  }
  return absl::OkStatus();
}

absl::Status FileStore::OpenAll() {
  if (!engine::IsSafePathComponent(meta_.name)) {
    return absl::InvalidArgumentError(absl::StrCat("unsafe torrent name \"", meta_.name, "\""));
  }
  if (mode_ == OpenMode::kCreate) {
    if (absl::Status s = MakeDirs(output_dir_); !s.ok()) return s;
  }
  const std::string out = output_dir_.empty() ? "." : output_dir_;
  FdGuard out_fd(open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (out_fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", out));

  if (!meta_.multi_file) {
    if (meta_.files.size() != 1) {
      return absl::InvalidArgumentError("single-file torrent must have exactly one file");
    }
    if (meta_.files[0].pad || meta_.files[0].is_symlink()) {
      return absl::InvalidArgumentError(
          "a single-file torrent's file cannot be a pad file or link");
    }
    const bool create = mode_ == OpenMode::kCreate && needed(0);
    absl::StatusOr<int> fd = OpenFile(out_fd.get(), meta_.name, path(0), meta_.files[0], create);
    if (!fd.ok() && !(absl::IsNotFound(fd.status()) && !needed(0))) return fd.status();
    fds_[0] = fd.ok() ? *fd : -1;
  } else {
    bool any_needed = false;
    for (size_t i = 0; i < meta_.files.size(); ++i) any_needed |= needed(i) && !meta_.files[i].pad;
    const std::string root_shown = JoinPath(output_dir_, meta_.name);
    absl::StatusOr<int> root =
        OpenDir(out_fd.get(), meta_.name, root_shown, mode_ == OpenMode::kCreate && any_needed);
    if (!root.ok() && absl::IsNotFound(root.status()) && !any_needed) return absl::OkStatus();
    if (!root.ok()) return root.status();
    FdGuard root_fd(*root);

    for (size_t i = 0; i < meta_.files.size(); ++i) {
      const engine::FileEntry& file = meta_.files[i];
      if (file.pad) continue;  // zeros that exist only in the torrent's byte layout
      if (file.path.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("file ", i, " has an empty path"));
      }
      // The parser validated these already; re-checking here keeps the one place that actually
      // touches the filesystem safe on its own.
      for (const std::string& component : file.path) {
        if (!engine::IsSafePathComponent(component)) {
          return absl::InvalidArgumentError(
              absl::StrCat("unsafe path component \"", component, "\" in file ", i));
        }
      }
      if (file.is_symlink()) {
        if (mode_ == OpenMode::kCreate && needed(i)) {
          if (absl::Status st = MakeSymlink(root_fd.get(), i); !st.ok()) return st;
        }
        continue;
      }
      const bool create = mode_ == OpenMode::kCreate && needed(i);
      std::string shown = root_shown;
      absl::StatusOr<int> parent_fd = OpenParents(root_fd.get(), file.path, &shown, create);
      if (!parent_fd.ok() && absl::IsNotFound(parent_fd.status()) && !needed(i)) continue;
      if (!parent_fd.ok()) return parent_fd.status();
      FdGuard dir(*parent_fd);
      const int parent = *parent_fd >= 0 ? *parent_fd : root_fd.get();
      shown = JoinPath(shown, file.path.back());
      absl::StatusOr<int> fd = OpenFile(parent, file.path.back(), shown, file, create);
      if (!fd.ok() && absl::IsNotFound(fd.status()) && !needed(i)) continue;
      if (!fd.ok()) return fd.status();
      fds_[i] = *fd;
    }
  }

  // Zero-length files exist on disk (so the torrent's layout is complete) but are never read or
  // written, so they do not need to hold one of the process's file descriptors.
  for (size_t i = 0; i < meta_.files.size(); ++i) {
    if (meta_.files[i].length == 0 && fds_[i] >= 0) {
      close(fds_[i]);
      fds_[i] = -1;
    }
  }
  if (mode_ == OpenMode::kCreate && policy_ == FdPolicy::kKeepOpen) {
    for (size_t i = 0; i < meta_.files.size(); ++i) {
      if (fds_[i] < 0) continue;
      absl::StatusOr<int> direct = OpenDirectFd(fds_[i]);
      direct_fds_[i] = direct.ok() ? *direct : -1;
    }
  }
  return absl::OkStatus();
}

void FileStore::ReplaceDirectFdForTesting(uint32_t file_index, int fd) {
  if (direct_fds_[file_index] >= 0) close(direct_fds_[file_index]);
  direct_fds_[file_index] = fd;
}

absl::Status FileStore::ReadPieceBlocking(uint32_t piece, absl::Span<uint8_t> buf) const {
  if (piece < meta_.num_pieces() && buf.size() != meta_.PieceSize(piece)) {
    return absl::InvalidArgumentError(absl::StrCat("buffer for piece ", piece, " has ", buf.size(),
                                                   " bytes, want ", meta_.PieceSize(piece)));
  }
  return ReadBlocking(piece, 0, buf);
}

absl::Status FileStore::ReadBlocking(uint32_t piece, int64_t offset,
                                     absl::Span<uint8_t> buf) const {
  if (piece >= meta_.num_pieces()) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", piece, " out of range"));
  }
  const int64_t size = meta_.PieceSize(piece);
  if (offset < 0 || offset > size || static_cast<int64_t>(buf.size()) > size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range ", offset, "+", buf.size(), " is outside piece ", piece, " (", size, " bytes)"));
  }
  std::vector<engine::FileSlice> slices;
  map_->Map(int64_t{piece} * meta_.piece_length + offset, static_cast<int64_t>(buf.size()),
            &slices);
  for (const engine::FileSlice& slice : slices) {
    if (slice.length <= 0) continue;
    uint8_t* dst = buf.data() + slice.range_offset;
    if (slice.pad) {
      std::memset(dst, 0, static_cast<size_t>(slice.length));
      continue;
    }
    FdGuard owned(-1);
    int fd = fds_[slice.file_index];
    if (policy_ == FdPolicy::kLazy) {
      // Thread-safe: recheck workers read concurrently, each through its own descriptor.
      if (!present_[slice.file_index]) {
        return absl::InternalError(absl::StrCat("no open file for ", path(slice.file_index)));
      }
      absl::StatusOr<int> opened = OpenFd(slice.file_index);
      if (!opened.ok()) return opened.status();
      owned.reset(*opened);
      fd = *opened;
    }
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("no open file for ", path(slice.file_index)));
    }
    int64_t done = 0;
    while (done < slice.length) {
      ssize_t n =
          pread(fd, dst + done, static_cast<size_t>(slice.length - done), slice.file_offset + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::ErrnoToStatus(errno, absl::StrCat("read ", path(slice.file_index)));
      }
      if (n == 0) {
        return absl::OutOfRangeError(absl::StrCat("read ", path(slice.file_index),
                                                  ": file ends before offset ",
                                                  slice.file_offset + slice.length));
      }
      done += n;
    }
  }
  return absl::OkStatus();
}

absl::Status PreallocateFiles(const FileStore& store) {
  const engine::Metainfo& meta = store.meta();
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const int fd = store.fd(static_cast<uint32_t>(i));
    if (fd < 0 || meta.files[i].length == 0) continue;  // also pad files and links
    // Mode 0 allocates blocks and keeps existing data; already-allocated ranges cost nothing.
    const int rc = fallocate(fd, 0, 0, meta.files[i].length);
    if (rc != 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("cannot preallocate ", store.path(static_cast<uint32_t>(i))));
    }
  }
  return absl::OkStatus();
}

}  // namespace torrenty::io
