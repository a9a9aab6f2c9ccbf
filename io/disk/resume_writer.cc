#include "io/disk/resume_writer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/metainfo/metainfo.h"

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

// The data folder is chosen by the user and trusted like the output folder of the data files;
// everything below it may have been planted, so <data_dir>/.torrenty is opened (and created)
// with O_NOFOLLOW: a symlink there is refused instead of followed out of the folder.
absl::StatusOr<int> OpenResumeDir(const std::string& data_dir, bool create) {
  Fd base(open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (base.fd < 0) return Errno(errno, absl::StrCat("open ", data_dir));
  if (create && mkdirat(base.fd, kResumeDir, 0755) != 0 && errno != EEXIST) {
    return Errno(errno, absl::StrCat("mkdir ", data_dir, "/", kResumeDir));
  }
  const int fd = openat(base.fd, kResumeDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st;
    if ((err == ENOTDIR || err == ELOOP) &&
        fstatat(base.fd, kResumeDir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open ", data_dir, "/", kResumeDir,
                       ": is a symbolic link (refusing to follow it)"));
    }
    return Errno(err, absl::StrCat("open ", data_dir, "/", kResumeDir));
  }
  return fd;
}

// stat of `relative` under `dir_fd` without following a symlink in any component: a stamp must
// describe the file the data is written to, and that is never reached through a link.
bool StatBeneath(int dir_fd, const std::string& relative, struct stat* st) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
  if (fd >= 0) {
    const bool ok = fstat(static_cast<int>(fd), st) == 0;
    close(static_cast<int>(fd));
    return ok;
  }
  if (errno != ENOSYS) return false;
  // Kernels before 5.6: only the last component is checked.
  return fstatat(dir_fd, relative.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0;
}

}  // namespace

std::string ResumePath(const std::string& data_dir, const engine::Metainfo& meta) {
  return absl::StrCat(data_dir, "/", kResumeDir, "/", engine::ToHex(meta.info_hash), ".resume");
}

std::vector<engine::FileStamp> StampFiles(const std::string& data_dir,
                                          const engine::Metainfo& meta) {
  std::vector<engine::FileStamp> out;
  out.reserve(meta.files.size());
  Fd base(open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (size_t i = 0; i < meta.files.size(); ++i) {
    struct stat st {};
    engine::FileStamp stamp;
    if (base.fd >= 0 && StatBeneath(base.fd, meta.RelativePath(i), &st) && S_ISREG(st.st_mode)) {
      stamp.size = st.st_size;
      stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    }
    out.push_back(stamp);
  }
  return out;
}

absl::StatusOr<engine::ResumeData> LoadResume(const std::string& data_dir,
                                              const engine::Metainfo& meta) {
  const std::string path = ResumePath(data_dir, meta);
  absl::StatusOr<int> dir = OpenResumeDir(data_dir, /*create=*/false);
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

ResumeWriter::ResumeWriter(std::string data_dir, const FileStore* store)
    : data_dir_(std::move(data_dir)), store_(store), thread_([this] { Loop(); }) {}

ResumeWriter::~ResumeWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

void ResumeWriter::Save(engine::Bitfield have) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(have);
  }
  work_cv_.notify_one();
}

absl::Status ResumeWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return !pending_.has_value() && !busy_; });
  // Moved, never copied: a copy shares a refcount that Debian's uninstrumented abseil updates out
  // of TSan's sight, so the writer thread's release would be reported as a race.
  absl::Status st = std::move(error_);
  error_ = absl::OkStatus();
  return st;
}

void ResumeWriter::Loop() {
  for (;;) {
    engine::Bitfield have;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      if (!pending_.has_value()) return;  // stopping with nothing left to save
      have = std::move(*pending_);
      pending_.reset();
      busy_ = true;
    }
    absl::Status st = Write(have);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      if (!st.ok() && error_.ok()) error_ = std::move(st);
    }
    // Flush waits for "nothing pending and not busy"; a Save that raced in keeps it waiting.
    idle_cv_.notify_all();
  }
}

absl::Status ResumeWriter::Write(const engine::Bitfield& have) {
  return WriteResume(data_dir_, *store_, have);
}

absl::Status WriteResume(const std::string& data_dir_, const FileStore& store,
                         const engine::Bitfield& have) {
  const FileStore* store_ = &store;
  const engine::Metainfo& meta = store_->meta();
  // Durable data first: the resume file may only claim pieces whose bytes survive a crash.
  if (absl::Status st = store_->SyncData(); !st.ok()) return st;
  engine::ResumeData data;
  data.info_hash = meta.info_hash;
  data.have = have;
  data.files = StampFiles(data_dir_, meta);
  absl::StatusOr<int> dir = OpenResumeDir(data_dir_, /*create=*/true);
  if (!dir.ok()) return dir.status();
  Fd dir_fd(*dir);
  const std::string path = ResumePath(data_dir_, meta);
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

}  // namespace torrenty::io
