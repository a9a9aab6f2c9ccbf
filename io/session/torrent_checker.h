// Finds which pieces of a torrent are already on disk, off the coordinator's loop: resume data
// whose file stamps all match is trusted; anything else is hashed piece by piece. One worker
// thread runs the jobs in order, so checking many torrents never floods the disk.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "engine/metainfo/metainfo.h"
#include "io/disk/resume_writer.h"

namespace torrenty::io {

struct CheckResult {
  absl::StatusOr<engine::Bitfield> have;
  std::string note;  // how it was decided ("resume data matches the files", "rechecked")
  // Resume data already says what `have` says (also when it was found in the download folder:
  // a restore of 10,000 seeds does not rewrite them all); else it is worth writing.
  bool resume_current = false;
};

// Blocking; for the checker thread. Resume data is read from `where`, or, when that has none,
// from <data_dir>/.torrenty, where serve kept it before it had a state folder.
CheckResult CheckTorrentData(const engine::Metainfo& meta, const std::string& data_dir,
                             const ResumeLocation& where, int threads);

class TorrentChecker {
 public:
  using DoneFn = std::function<void(CheckResult)>;
  explicit TorrentChecker(int threads);
  ~TorrentChecker();  // abandons queued jobs, finishes the running one

  // `done` runs on the checker thread; it should post the result to its owner.
  void Check(std::shared_ptr<const engine::Metainfo> meta, std::string data_dir,
             ResumeLocation where, DoneFn done);

 private:
  struct Job {
    std::shared_ptr<const engine::Metainfo> meta;
    std::string data_dir;
    ResumeLocation where;
    DoneFn done;
  };
  void Loop();

  const int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace torrenty::io
