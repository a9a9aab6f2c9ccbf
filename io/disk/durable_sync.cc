#include "io/disk/durable_sync.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace torrenty::io {

absl::StatusOr<dev_t> SyncFilesystemOf(int fd, const std::string& shown) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", shown));
  // Since Linux 5.8 syncfs also reports writeback errors of the filesystem, as fdatasync does.
  if (syncfs(fd) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("syncfs ", shown));
  return st.st_dev;
}

absl::Status SyncFileUnlessOn(int fd, std::optional<dev_t> synced, const std::string& shown) {
  if (synced.has_value()) {
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_dev == *synced) return absl::OkStatus();
  }
  if (fdatasync(fd) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("fdatasync ", shown));
  return absl::OkStatus();
}

}  // namespace torrenty::io
