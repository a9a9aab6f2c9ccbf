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

namespace torrenty::io {

struct CheckResult {
  absl::StatusOr<engine::Bitfield> have;
  std::string note;  // how it was decided ("resume data matches the files", "rechecked")
};

// Blocking; for the checker thread and the single-torrent commands.
CheckResult CheckTorrentData(const engine::Metainfo& meta, const std::string& data_dir,
                             int threads);

class TorrentChecker {
 public:
  using DoneFn = std::function<void(CheckResult)>;
  explicit TorrentChecker(int threads);
  ~TorrentChecker();  // abandons queued jobs, finishes the running one

  // `done` runs on the checker thread; it should post the result to its owner.
  void Check(std::shared_ptr<const engine::Metainfo> meta, std::string data_dir, DoneFn done);

 private:
  struct Job {
    std::shared_ptr<const engine::Metainfo> meta;
    std::string data_dir;
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
