// Making many files' data durable at once. Each fdatasync of a file whose blocks were just
// allocated costs the filesystem a journal commit, so a 10,000-file torrent paid 10,000 commits on
// every save and again at exit (tens of seconds on this VM's ext4). Past a few dozen files one
// syncfs commits them all together; a file on another filesystem (a mount inside the data folder)
// is still synced on its own.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace torrenty::io {

// From this many files to sync, one syncfs replaces their fdatasyncs.
inline constexpr size_t kSyncfsFilesMin = 64;

// syncfs on the filesystem of `fd`; returns that filesystem's device for SyncFileUnlessOn.
[[nodiscard]] absl::StatusOr<dev_t> SyncFilesystemOf(int fd, const std::string& shown);

// fdatasync(fd), unless the file lives on `synced` (a filesystem SyncFilesystemOf already synced).
[[nodiscard]] absl::Status SyncFileUnlessOn(int fd, std::optional<dev_t> synced,
                                            const std::string& shown);

}  // namespace torrenty::io
