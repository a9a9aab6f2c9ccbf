#include "io/resume_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

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

}  // namespace

std::string ResumePath(const std::string& data_dir, const engine::Metainfo& meta) {
  return absl::StrCat(data_dir, "/.torrenty/", engine::ToHex(meta.info_hash), ".resume");
}

std::vector<engine::FileStamp> StampFiles(const std::string& data_dir,
                                          const engine::Metainfo& meta) {
  std::vector<engine::FileStamp> out;
  out.reserve(meta.files.size());
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const std::string path = absl::StrCat(data_dir, "/", meta.RelativePath(i));
    struct stat st {};
    engine::FileStamp stamp;
    if (fstatat(AT_FDCWD, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
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
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Errno(errno, absl::StrCat("open ", path));
  std::string data;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Errno(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > engine::kMaxResumeFileBytes) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, " is too large"));
    }
  }
  close(fd);
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
  absl::Status st = error_;
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
      if (!st.ok() && error_.ok()) error_ = st;
    }
    // Flush waits for "nothing pending and not busy"; a Save that raced in keeps it waiting.
    idle_cv_.notify_all();
  }
}

absl::Status ResumeWriter::Write(const engine::Bitfield& have) {
  const engine::Metainfo& meta = store_->meta();
  // Durable data first: the resume file may only claim pieces whose bytes survive a crash.
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const int fd = store_->fd(static_cast<uint32_t>(i));
    if (fd >= 0 && fdatasync(fd) != 0) {
      return Errno(errno, absl::StrCat("fdatasync ", store_->path(static_cast<uint32_t>(i))));
    }
  }
  engine::ResumeData data;
  data.info_hash = meta.info_hash;
  data.have = have;
  data.files = StampFiles(data_dir_, meta);
  const std::string dir = absl::StrCat(data_dir_, "/.torrenty");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(errno, absl::StrCat("mkdir ", dir));
  }
  const std::string path = ResumePath(data_dir_, meta);
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Errno(errno, absl::StrCat("open ", tmp));
  absl::Status st = WriteAll(fd, engine::EncodeResume(data), tmp);
  if (st.ok() && fsync(fd) != 0) st = Errno(errno, absl::StrCat("fsync ", tmp));
  close(fd);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    st = Errno(errno, absl::StrCat("rename ", tmp));
  }
  if (!st.ok()) {
    unlink(tmp.c_str());  // a half-written temp file must not linger; the old file stays valid
    return st;
  }
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);  // makes the rename itself durable
    close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace torrenty::io
