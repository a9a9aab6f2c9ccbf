// Directory walk with POSIX calls (no exceptions) and piece hashing split by piece ranges
// across threads, each reading multi-MiB runs of whole pieces with pread.
#include "io/disk/torrent_creator.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/sha1.h"
#include "engine/metainfo/torrent_builder.h"

namespace torrenty::io {
namespace {

using engine::FileEntry;

constexpr int64_t kReadChunk = int64_t{4} << 20;
constexpr int64_t kMinPieceLength = int64_t{16} << 10;
// Two threads already saturate most disks; more only adds seeking on spinning media.
constexpr int kHashThreads = 2;

absl::Status ErrnoError(std::string_view what, const std::string& path, int err) {
  return absl::InternalError(
      absl::StrCat(absl::string_view(what.data(), what.size()), " ", path, ": ", strerror(err)));
}

struct WalkedFile {
  std::vector<std::string> components;
  std::string joined;  // sort key: relative path bytes
  int64_t length;
};

class Walker {
 public:
  explicit Walker(std::string root) : root_(std::move(root)) {}

  absl::Status Walk(const std::vector<std::string>& rel, std::vector<WalkedFile>* out) {
    const std::string dir_path = Join(rel);
    DIR* dir = opendir(dir_path.c_str());
    if (dir == nullptr) return ErrnoError("cannot open directory", dir_path, errno);
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, closedir);
    struct stat dir_st;
    if (fstat(dirfd(dir), &dir_st) != 0) return ErrnoError("cannot stat", dir_path, errno);
    // Folders on the way down from the root: a link back to one of them would recurse forever.
    ancestors_.push_back({dir_st.st_dev, dir_st.st_ino, dir_path});
    absl::Status status = WalkOpen(dir, dir_path, rel, out);
    ancestors_.pop_back();
    return status;
  }

  std::string Join(const std::vector<std::string>& rel) const {
    return rel.empty() ? root_ : absl::StrCat(root_, "/", absl::StrJoin(rel, "/"));
  }

 private:
  struct Ancestor {
    dev_t dev;
    ino_t ino;
    std::string path;
  };

  absl::Status WalkOpen(DIR* dir, const std::string& dir_path, const std::vector<std::string>& rel,
                        std::vector<WalkedFile>* out) {
    std::vector<std::string> names;
    while (true) {
      errno = 0;
      dirent* entry = readdir(dir);
      if (entry == nullptr) {
        if (errno != 0) return ErrnoError("cannot read directory", dir_path, errno);
        break;
      }
      const std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    for (const std::string& name : names) {
      std::vector<std::string> child = rel;
      child.push_back(name);
      const std::string child_path = Join(child);
      struct stat st;
      if (lstat(child_path.c_str(), &st) != 0) return ErrnoError("cannot stat", child_path, errno);
      if (S_ISLNK(st.st_mode) && stat(child_path.c_str(), &st) != 0) {
        const int err = errno;
        if (err == ELOOP) {
          return absl::InvalidArgumentError(absl::StrCat("symbolic link loop: ", child_path));
        }
        if (err == ENOENT || err == ENOTDIR) {
          return absl::InvalidArgumentError(
              absl::StrCat("dangling symbolic link: ", child_path, " -> ", LinkTarget(child_path)));
        }
        return ErrnoError("cannot follow symbolic link", child_path, err);
      }
      if (S_ISDIR(st.st_mode)) {
        for (const Ancestor& a : ancestors_) {
          if (a.dev == st.st_dev && a.ino == st.st_ino) {
            return absl::InvalidArgumentError(
                absl::StrCat("symbolic link loop: ", child_path, " leads back to ", a.path));
          }
        }
        if (absl::Status s = Walk(child, out); !s.ok()) return s;
      } else if (S_ISREG(st.st_mode)) {
        if (out->size() >= engine::kMaxFiles) {
          return absl::InvalidArgumentError(
              absl::StrCat("more than ", engine::kMaxFiles, " files"));
        }
        WalkedFile f{.components = child,
                     .joined = absl::StrJoin(child, "/"),
                     .length = static_cast<int64_t>(st.st_size)};
        out->push_back(std::move(f));
      } else {
        return absl::InvalidArgumentError(absl::StrCat("not a regular file: ", child_path));
      }
    }
    return absl::OkStatus();
  }

  static std::string LinkTarget(const std::string& path) {
    char target[PATH_MAX];
    const ssize_t n = readlink(path.c_str(), target, sizeof(target));
    return n < 0 ? std::string("?") : std::string(target, static_cast<size_t>(n));
  }

  std::string root_;
  std::vector<Ancestor> ancestors_;
};

// Hashes pieces [first, last) into hashes[first..last). Keeps the last opened file
// descriptor because consecutive slices usually hit the same file.
absl::Status HashRange(const engine::Metainfo& layout, const std::vector<std::string>& paths,
                       uint32_t first, uint32_t last, std::vector<engine::Sha1Digest>* hashes,
                       std::atomic<int64_t>* hashed) {
  const engine::FileMap map(layout);
  const int64_t pieces_per_chunk = std::max<int64_t>(1, kReadChunk / layout.piece_length);
  std::vector<uint8_t> buffer;
  std::vector<engine::FileSlice> slices;
  int fd = -1;
  uint32_t fd_file = 0;
  auto close_fd = [&] {
    if (fd >= 0) close(fd);
    fd = -1;
  };
  engine::Sha1Hasher hasher;
  for (uint32_t piece = first; piece < last;) {
    const uint32_t chunk_end =
        static_cast<uint32_t>(std::min<int64_t>(last, piece + pieces_per_chunk));
    const int64_t start = static_cast<int64_t>(piece) * layout.piece_length;
    const int64_t end =
        std::min(layout.total_length, static_cast<int64_t>(chunk_end) * layout.piece_length);
    buffer.resize(static_cast<size_t>(end - start));
    slices.clear();
    map.Map(start, end - start, &slices);
    for (const engine::FileSlice& s : slices) {
      if (fd < 0 || fd_file != s.file_index) {
        close_fd();
        fd = open(paths[s.file_index].c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return ErrnoError("cannot open", paths[s.file_index], errno);
        fd_file = s.file_index;
      }
      int64_t done = 0;
      while (done < s.length) {
        const ssize_t n = pread(fd, buffer.data() + s.range_offset + done,
                                static_cast<size_t>(s.length - done), s.file_offset + done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          const int err = errno;
          close_fd();
          return ErrnoError("cannot read", paths[s.file_index], err);
        }
        if (n == 0) {
          close_fd();
          return absl::FailedPreconditionError(
              absl::StrCat("file shrank while hashing: ", paths[s.file_index]));
        }
        done += n;
      }
    }
    for (uint32_t p = piece; p < chunk_end; ++p) {
      const int64_t offset = static_cast<int64_t>(p) * layout.piece_length - start;
      hasher.Update(
          absl::MakeConstSpan(buffer).subspan(static_cast<size_t>(offset), layout.PieceSize(p)));
      (*hashes)[p] = hasher.Finish();
    }
    hashed->fetch_add(end - start, std::memory_order_relaxed);
    piece = chunk_end;
  }
  close_fd();
  return absl::OkStatus();
}

std::string Basename(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<std::string> CreateTorrent(const std::string& path, const CreateOptions& options) {
  if (options.piece_length != 0) {
    if (options.piece_length < kMinPieceLength || options.piece_length > engine::kMaxPieceLength ||
        (options.piece_length & (options.piece_length - 1)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("piece length must be a power of two between ",
                                                     kMinPieceLength, " and ",
                                                     engine::kMaxPieceLength));
    }
  }
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return ErrnoError("cannot resolve", path, errno);
  const std::string root = resolved;
  // Name the torrent as the user named the path (a symlink keeps its own name); only
  // "." and ".." need the canonical path to find a meaningful name.
  std::string name = Basename(path);
  if (name == "." || name == "..") name = Basename(root);
  if (!engine::IsSafePathComponent(name)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot name a torrent after ", root));
  }

  struct stat st;
  if (stat(root.c_str(), &st) != 0) return ErrnoError("cannot stat", root, errno);

  engine::Metainfo layout;  // only the fields FileMap and PieceSize need
  layout.name = name;
  std::vector<std::string> disk_paths;
  if (S_ISREG(st.st_mode)) {
    layout.files.push_back(FileEntry{.path = {}, .length = st.st_size, .offset = 0});
    disk_paths.push_back(root);
  } else if (S_ISDIR(st.st_mode)) {
    layout.multi_file = true;
    Walker walker(root);
    std::vector<WalkedFile> walked;
    if (absl::Status s = walker.Walk({}, &walked); !s.ok()) return s;
    std::sort(walked.begin(), walked.end(),
              [](const WalkedFile& a, const WalkedFile& b) { return a.joined < b.joined; });
    for (WalkedFile& f : walked) {
      if (name.size() + 1 + f.joined.size() > engine::kMaxPathLength) {
        return absl::InvalidArgumentError(absl::StrCat("path too long: ", f.joined));
      }
      disk_paths.push_back(walker.Join(f.components));
      layout.files.push_back(FileEntry{.path = std::move(f.components), .length = f.length});
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("not a regular file or directory: ", root));
  }

  int64_t total = 0;
  for (FileEntry& f : layout.files) {
    f.offset = total;
    total += f.length;  // st_size values of real files cannot overflow int64 together
  }
  if (total == 0) return absl::InvalidArgumentError(absl::StrCat("no data to share in ", root));
  layout.total_length = total;
  layout.piece_length =
      options.piece_length != 0 ? options.piece_length : engine::DefaultPieceLength(total);
  const int64_t num_pieces = (total - 1) / layout.piece_length + 1;
  if (num_pieces > engine::kMaxPieces) {
    return absl::InvalidArgumentError(
        absl::StrCat(num_pieces, " pieces is too many; use a larger piece length"));
  }
  layout.piece_hashes.resize(static_cast<size_t>(num_pieces));

  const uint32_t pieces = layout.num_pieces();
  const int threads = pieces < 2 * kHashThreads ? 1 : kHashThreads;
  std::vector<absl::Status> results(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  std::atomic<int64_t> hashed{0};
  std::mutex mu;
  std::condition_variable done_cv;
  int running = threads;
  for (int t = 0; t < threads; ++t) {
    const uint32_t first = static_cast<uint32_t>(int64_t{pieces} * t / threads);
    const uint32_t last = static_cast<uint32_t>(int64_t{pieces} * (t + 1) / threads);
    workers.emplace_back([&, t, first, last] {
      results[static_cast<size_t>(t)] =
          HashRange(layout, disk_paths, first, last, &layout.piece_hashes, &hashed);
      std::lock_guard<std::mutex> lock(mu);
      --running;
      done_cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    while (!done_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return running == 0; })) {
      if (!options.on_progress) continue;
      lock.unlock();
      options.on_progress(hashed.load(std::memory_order_relaxed), total);
      lock.lock();
    }
  }
  for (std::thread& w : workers) w.join();
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }

  engine::NewTorrent torrent{
      .name = name,
      .files = std::move(layout.files),
      .multi_file = layout.multi_file,
      .piece_length = layout.piece_length,
      .piece_hashes = std::move(layout.piece_hashes),
      .tiers = options.tiers,
      .is_private = options.is_private,
      .created_by = options.created_by,
      .creation_date = absl::ToUnixSeconds(absl::Now()),
      .comment = options.comment,
      .source = options.source,
      .web_seeds = options.web_seeds,
  };
  return engine::EncodeTorrent(torrent);
}

}  // namespace torrenty::io
