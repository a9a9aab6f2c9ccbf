#include "io/disk/resume_writer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/metainfo/metainfo.h"
#include "io/disk/durable_sync.h"

namespace torrenty::io {
namespace {

absl::Status Errno(int err, const std::string& what) { return absl::ErrnoToStatus(err, what); }

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, absl::StrCat("write ", path));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

constexpr char kResumeDir[] = ".torrenty";
// Metainfo renames a torrent that would take this folder; both must mean the same one.
static_assert(engine::kStateDirName == kResumeDir);

// Closes an fd on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string ResumeName(const engine::Metainfo& meta) {
  return absl::StrCat(engine::ToHex(meta.info_hash), ".resume");
}

absl::StatusOr<int> OpenResumeDir(const ResumeLocation& where, bool create) {
  const std::string shown = absl::StrCat(where.base, "/", where.folder);
  Fd base(open(where.base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (base.fd < 0) return Errno(errno, absl::StrCat("open ", where.base));
  if (create && mkdirat(base.fd, where.folder.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(errno, absl::StrCat("mkdir ", shown));
  }
  const int fd =
      openat(base.fd, where.folder.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st;
    if ((err == ENOTDIR || err == ELOOP) &&
        fstatat(base.fd, where.folder.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open ", shown, ": is a symbolic link (refusing to follow it)"));
    }
    return Errno(err, absl::StrCat("open ", shown));
  }
  return fd;
}

// Opens `relative` under `dir_fd` without following a symlink in any component: a stamp must
// describe the file the data is written to, and that is never reached through a link.
int OpenBeneath(int dir_fd, const std::string& relative, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
  // Kernels before 5.6: only the last component is checked.
  return openat(dir_fd, relative.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
}

engine::FileStamp Stamp(int fd) {
  struct stat st {};
  engine::FileStamp stamp;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    stamp.size = st.st_size;
    stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  return stamp;
}

}  // namespace

bool FileHoldsNewPiece(const engine::Metainfo& meta, size_t i, const engine::Bitfield& have,
                       const engine::Bitfield& durable) {
  const engine::FileEntry& f = meta.files[i];
  if (f.length <= 0 || meta.piece_length <= 0) return false;
  const int64_t first = f.offset / meta.piece_length;
  const int64_t last = (f.offset + f.length - 1) / meta.piece_length;
  for (int64_t p = first; p <= last; ++p) {
    const uint32_t piece = static_cast<uint32_t>(p);
    if (have.Get(piece) && !durable.Get(piece)) return true;
  }
  return false;
}

ResumeLocation ResumeLocation::InDataDir(std::string data_dir) {
  return ResumeLocation{std::move(data_dir), kResumeDir};
}

ResumeLocation ResumeLocation::InStateDir(std::string state_dir) {
  return ResumeLocation{std::move(state_dir), "resume"};
}

std::string ResumeLocation::Path(const engine::Metainfo& meta) const {
  return absl::StrCat(base, "/", folder, "/", ResumeName(meta));
}

std::string ResumePath(const std::string& data_dir, const engine::Metainfo& meta) {
  return ResumeLocation::InDataDir(data_dir).Path(meta);
}

std::vector<engine::FileStamp> StampFiles(const std::string& data_dir,
                                          const engine::Metainfo& meta) {
  std::vector<engine::FileStamp> out;
  out.reserve(meta.files.size());
  Fd base(open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (size_t i = 0; i < meta.files.size(); ++i) {
    Fd f(base.fd >= 0 ? OpenBeneath(base.fd, meta.RelativePath(i), O_PATH) : -1);
    out.push_back(Stamp(f.fd));
  }
  return out;
}

absl::StatusOr<engine::ResumeData> LoadResume(const std::string& data_dir,
                                              const engine::Metainfo& meta) {
  return LoadResume(ResumeLocation::InDataDir(data_dir), meta);
}

absl::StatusOr<engine::ResumeData> LoadResume(const ResumeLocation& where,
                                              const engine::Metainfo& meta) {
  const std::string path = where.Path(meta);
  absl::StatusOr<int> dir = OpenResumeDir(where, /*create=*/false);
  if (!dir.ok()) return dir.status();
  Fd dir_fd(*dir);
  Fd file(openat(dir_fd.fd, ResumeName(meta).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (file.fd < 0) return Errno(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  std::string data;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(file.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, absl::StrCat("read ", path));
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > engine::kMaxResumeFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is too large"));
    }
  }
  return engine::DecodeResume(data, meta);
}

absl::Status WriteResume(const ResumeLocation& where, const std::string& data_dir,
                         const engine::Metainfo& meta, const engine::Bitfield& have, bool live,
                         const engine::Bitfield* durable) {
  engine::ResumeData data;
  data.info_hash = meta.info_hash;
  data.have = have;
  data.live = live;
  data.files.reserve(meta.files.size());
  // Durable data first: the resume file may only claim pieces whose bytes survive a crash. A
  // descriptor of our own reaches the same file as the store's (fdatasync acts on the file, not
  // the descriptor), so the writer never depends on the lifetime of a running torrent.
  Fd base(open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // Never a pad file, which holds none of our writes.
  std::vector<bool> wants_sync(meta.files.size());
  size_t syncs = 0;
  for (size_t i = 0; i < meta.files.size(); ++i) {
    wants_sync[i] =
        !meta.files[i].pad && (durable == nullptr || FileHoldsNewPiece(meta, i, have, *durable));
    syncs += wants_sync[i];
  }
  std::optional<dev_t> synced_fs;
  if (syncs >= kSyncfsFilesMin && base.fd >= 0) {
    absl::StatusOr<dev_t> dev = SyncFilesystemOf(base.fd, data_dir);
    if (!dev.ok()) return dev.status();
    synced_fs = *dev;
  }
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const std::string relative = meta.RelativePath(i);
    Fd f(base.fd >= 0 ? OpenBeneath(base.fd, relative, O_RDONLY | O_NOCTTY | O_NONBLOCK) : -1);
    // Stamped like StampFiles stamps (a file we may not read still has a stamp), but synced only
    // when it can be.
    const bool sync = f.fd >= 0 && wants_sync[i];
    if (f.fd < 0 && base.fd >= 0) f.fd = OpenBeneath(base.fd, relative, O_PATH);
    if (sync && Stamp(f.fd).size >= 0) {
      absl::Status st = SyncFileUnlessOn(f.fd, synced_fs, absl::StrCat(data_dir, "/", relative));
      if (!st.ok()) return st;
    }
    data.files.push_back(Stamp(f.fd));  // after the sync, which may have moved nothing
  }
  absl::StatusOr<int> dir = OpenResumeDir(where, /*create=*/true);
  if (!dir.ok()) return dir.status();
  Fd dir_fd(*dir);
  const std::string path = where.Path(meta);
  const std::string name = ResumeName(meta);
  const std::string tmp_name = absl::StrCat(name, ".tmp");
  const std::string tmp = absl::StrCat(path, ".tmp");
  // O_EXCL after removing a leftover: whatever sits under the temp name (a planted symlink
  // included) is replaced by a fresh file of ours, never opened.
  unlinkat(dir_fd.fd, tmp_name.c_str(), 0);
  const int fd = openat(dir_fd.fd, tmp_name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Errno(errno, absl::StrCat("open ", tmp));
  absl::Status st = WriteAll(fd, engine::EncodeResume(data), tmp);
  if (st.ok() && fsync(fd) != 0) st = Errno(errno, absl::StrCat("fsync ", tmp));
  close(fd);
  // rename replaces a symlink at the final name rather than writing through it.
  if (st.ok() && renameat(dir_fd.fd, tmp_name.c_str(), dir_fd.fd, name.c_str()) != 0) {
    st = Errno(errno, absl::StrCat("rename ", tmp));
  }
  if (!st.ok()) {
    // A half-written temp file must not linger; the old file stays valid.
    unlinkat(dir_fd.fd, tmp_name.c_str(), 0);
    return st;
  }
  fsync(dir_fd.fd);  // makes the rename itself durable
  return absl::OkStatus();
}

absl::Status RemoveResume(const ResumeLocation& where, const engine::Metainfo& meta) {
  absl::StatusOr<int> dir = OpenResumeDir(where, /*create=*/false);
  if (!dir.ok()) return absl::IsNotFound(dir.status()) ? absl::OkStatus() : dir.status();
  Fd dir_fd(*dir);
  if (unlinkat(dir_fd.fd, ResumeName(meta).c_str(), 0) != 0 && errno != ENOENT) {
    return Errno(errno, absl::StrCat("remove ", where.Path(meta)));
  }
  return absl::OkStatus();
}

ResumeWriter::ResumeWriter(DoneFn done) : done_(std::move(done)), thread_([this] { Loop(); }) {}

ResumeWriter::~ResumeWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

void ResumeWriter::Submit(ResumeJob job) {
  std::string path = job.where.Path(*job.meta);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = pending_.try_emplace(path);
    if (inserted) order_.push_back(std::move(path));
    it->second.tags.push_back(job.tag);
    // Progress queued for this file keeps the job from being dropped.
    if (!inserted && !it->second.job.optional) job.optional = false;
    it->second.job = std::move(job);
  }
  work_cv_.notify_one();
}

absl::Status ResumeWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return order_.empty() && !busy_; });
  // Moved, never copied: a copy shares a refcount that Debian's uninstrumented abseil updates out
  // of TSan's sight, so the writer thread's release would be reported as a race.
  absl::Status st = std::move(error_);
  error_ = absl::OkStatus();
  return st;
}

size_t ResumeWriter::DropOptional() {
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(order_, [&](const std::string& path) {
      auto it = pending_.find(path);
      if (it == pending_.end() || !it->second.job.optional) return false;
      pending_.erase(it);
      ++dropped;
      return true;
    });
  }
  idle_cv_.notify_all();
  return dropped;
}

uint64_t ResumeWriter::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

void ResumeWriter::Loop() {
  for (;;) {
    Pending p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || !order_.empty(); });
      if (order_.empty()) return;  // stopping with nothing left to write
      auto it = pending_.find(order_.front());
      p = std::move(it->second);
      pending_.erase(it);
      order_.pop_front();
      busy_ = true;
    }
    const ResumeJob& j = p.job;
    const std::string key = absl::StrCat(j.where.Path(*j.meta), "\n", j.data_dir);
    const bool keeps_baseline = !j.remove && !j.optional;
    auto base = durable_.find(key);
    const engine::Bitfield* durable =
        keeps_baseline && base != durable_.end() && base->second.size() == j.have.size()
            ? &base->second
            : nullptr;
    absl::Status st = j.remove ? RemoveResume(j.where, *j.meta)
                               : WriteResume(j.where, j.data_dir, *j.meta, j.have, j.live, durable);
    if (keeps_baseline && st.ok()) {
      durable_[key] = j.have;
    } else {
      durable_.erase(key);
    }
    if (done_) {
      for (uint64_t tag : p.tags) done_(tag, st);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      ++writes_;
      if (!st.ok() && error_.ok()) error_ = std::move(st);
    }
    // Flush waits for "nothing queued and not busy"; a Submit that raced in keeps it waiting.
    idle_cv_.notify_all();
  }
}

}  // namespace torrenty::io
