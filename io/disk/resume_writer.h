// Resume data on disk (engine/metainfo/resume.h) and the session's one writer of it. A save first
// makes the data files durable (fdatasync), then stamps them and replaces the resume file
// atomically (temp file, fsync, rename), so a resume file never claims a piece whose bytes could
// still be lost.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "engine/metainfo/resume.h"

namespace torrenty::io {

// Where a torrent's resume file lives: <base>/<folder>/<hex info-hash>.resume. `base` is chosen
// by the user and trusted; everything below it may have been planted, so the folder and the file
// are opened with O_NOFOLLOW: a symlink at either name is refused (or, for the file itself,
// replaced by the rename) instead of followed out of the folder.
struct ResumeLocation {
  std::string base;
  std::string folder;
  // <data_dir>/.torrenty: the single-torrent commands (and serve before it kept resume data in
  // its state folder).
  static ResumeLocation InDataDir(std::string data_dir);
  // <state_dir>/resume: serve.
  static ResumeLocation InStateDir(std::string state_dir);
  std::string Path(const engine::Metainfo& meta) const;
};

std::string ResumePath(const std::string& data_dir, const engine::Metainfo& meta);

// Current size and mtime of every file of `meta` under data_dir (size -1 when missing or reached
// through a symlink: openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); blocking, for start-up and
// the writer thread only.
std::vector<engine::FileStamp> StampFiles(const std::string& data_dir,
                                          const engine::Metainfo& meta);

// Reads the resume file; NotFound when there is none.
absl::StatusOr<engine::ResumeData> LoadResume(const ResumeLocation& where,
                                              const engine::Metainfo& meta);
absl::StatusOr<engine::ResumeData> LoadResume(const std::string& data_dir,
                                              const engine::Metainfo& meta);

// Blocking: fdatasyncs the files of `meta` under data_dir, stamps them, then replaces the resume
// file atomically. `live`: the torrent keeps running (engine::ResumeData::live). `durable`: the
// pieces an earlier save already made durable; then only the files that hold a piece of `have`
// not in it are synced (a 10,000-file torrent would otherwise fdatasync every file every save).
[[nodiscard]] absl::Status WriteResume(const ResumeLocation& where, const std::string& data_dir,
                                       const engine::Metainfo& meta, const engine::Bitfield& have,
                                       bool live, const engine::Bitfield* durable = nullptr);
// Whether file `i` of `meta` holds a byte of a piece in `have` that is not in `durable`: only such
// a file took writes since the save that made `durable` durable.
bool FileHoldsNewPiece(const engine::Metainfo& meta, size_t i, const engine::Bitfield& have,
                       const engine::Bitfield& durable);
// Blocking; a missing file is not an error.
[[nodiscard]] absl::Status RemoveResume(const ResumeLocation& where, const engine::Metainfo& meta);

// What a torrent asks the writer to do: save `have` (or remove the file).
struct ResumeJob {
  uint64_t tag = 0;  // handed back with the result (the coordinator's torrent id)
  std::shared_ptr<const engine::Metainfo> meta;
  std::string data_dir;
  ResumeLocation where;
  engine::Bitfield have;
  bool live = false;
  bool remove = false;
  // A snapshot of what a check found, not of progress: losing it costs the next start a recheck
  // and nothing else, so DropOptional may discard it (a stop must not wait for 10,000 of them).
  bool optional = false;
};

// One writer thread for a whole session, whatever the number of torrents. Jobs are coalesced per
// resume file: a job for a file that is still queued replaces the queued one in its place (only
// the latest snapshot of a torrent is written), and files are written in the order they were
// first queued. A file's jobs never overtake each other, and a removal queued after a save wins.
class ResumeWriter {
 public:
  // Runs on the writer thread once per Submit, with the status of the write that covered it (a
  // replaced job is reported with the write that replaced it).
  using DoneFn = std::function<void(uint64_t tag, const absl::Status& status)>;
  explicit ResumeWriter(DoneFn done = nullptr);
  ~ResumeWriter();  // writes everything queued, then joins
  ResumeWriter(const ResumeWriter&) = delete;
  ResumeWriter& operator=(const ResumeWriter&) = delete;

  // Thread-safe and never blocks on I/O.
  void Submit(ResumeJob job);
  // Blocks until every queued job is done; returns the first error since the last call.
  absl::Status Flush();
  // Discards the queued jobs that are optional (and not being written); they are not reported
  // to DoneFn. Returns how many.
  size_t DropOptional();
  // Files written or removed so far (coalesced jobs count once).
  uint64_t writes() const;

 private:
  struct Pending {
    ResumeJob job;
    std::vector<uint64_t> tags;  // every Submit the job covers
  };
  void Loop();

  DoneFn done_;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;                    // a job was queued or stop_ was set
  std::condition_variable idle_cv_;                    // a job finished
  absl::flat_hash_map<std::string, Pending> pending_;  // by resume path; guarded by mu_
  std::deque<std::string> order_;                      // paths in pending_, FIFO; guarded by mu_
  bool busy_ = false;                                  // guarded by mu_
  bool stop_ = false;                                  // guarded by mu_
  uint64_t writes_ = 0;                                // guarded by mu_
  absl::Status error_;                                 // guarded by mu_
  // The writer thread's own: per resume path and data folder, the have-set its last save made
  // durable. A check's snapshot (optional) or a removal forgets it, so the save after a recheck
  // syncs every file again.
  absl::flat_hash_map<std::string, engine::Bitfield> durable_;
  std::thread thread_;
};

}  // namespace torrenty::io
