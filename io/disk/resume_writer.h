// Saves resume data (engine/resume.h) off the ring thread. A save first makes the data files
// durable (fdatasync), then stamps them and replaces the resume file atomically (temp file,
// fsync, rename), so a resume file never claims a piece whose bytes could still be lost.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "engine/metainfo/resume.h"
#include "io/disk/file_store.h"

namespace torrenty::io {

// <data_dir>/.torrenty/<hex info-hash>.resume: inside the output folder, one per torrent. Reads
// and writes open .torrenty and the file relative to data_dir with O_NOFOLLOW, so a symlink
// planted at either name is refused (or, for the file itself, replaced by the rename) instead of
// followed out of the folder.
std::string ResumePath(const std::string& data_dir, const engine::Metainfo& meta);

// Current size and mtime of every file of `meta` under data_dir (size -1 when missing or reached
// through a symlink: openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); blocking, for start-up and
// the writer thread only.
std::vector<engine::FileStamp> StampFiles(const std::string& data_dir,
                                          const engine::Metainfo& meta);

// Reads the resume file; NotFound when there is none.
absl::StatusOr<engine::ResumeData> LoadResume(const std::string& data_dir,
                                              const engine::Metainfo& meta);

// Blocking: syncs the data files, then replaces the resume file atomically. For the writer
// thread and the start-up check (after a recheck, so the next start can skip it).
[[nodiscard]] absl::Status WriteResume(const std::string& data_dir, const FileStore& store,
                                       const engine::Bitfield& have);

class ResumeWriter {
 public:
  // `store` must outlive the writer; its fds are synced before each save.
  ResumeWriter(std::string data_dir, const FileStore* store);
  ~ResumeWriter();  // finishes a pending save, then joins
  ResumeWriter(const ResumeWriter&) = delete;
  ResumeWriter& operator=(const ResumeWriter&) = delete;

  // Thread-safe and never blocks on I/O: queues a snapshot; a newer one replaces an unsaved one.
  void Save(engine::Bitfield have);
  // Blocks until every queued snapshot is on disk; returns the first error since the last call.
  absl::Status Flush();

 private:
  absl::Status Write(const engine::Bitfield& have);
  void Loop();

  const std::string data_dir_;
  const FileStore* store_;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  std::mutex mu_;
  std::condition_variable work_cv_;          // pending_ was set or stop_ was set
  std::condition_variable idle_cv_;          // a save finished (busy_ became false)
  std::optional<engine::Bitfield> pending_;  // guarded by mu_
  bool busy_ = false;                        // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  absl::Status error_;                       // guarded by mu_
  std::thread thread_;
};

}  // namespace torrenty::io
