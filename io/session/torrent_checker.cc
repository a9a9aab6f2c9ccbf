#include "io/session/torrent_checker.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "io/disk/file_store.h"
#include "io/disk/recheck.h"
#include "io/disk/resume_writer.h"

namespace torrenty::io {

CheckResult CheckTorrentData(const engine::Metainfo& meta, const std::string& data_dir,
                             int threads) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(data_dir) / meta.name, ec)) {
    return {engine::Bitfield(meta.num_pieces()), ""};
  }
  std::string note;
  absl::StatusOr<engine::ResumeData> resume = LoadResume(data_dir, meta);
  if (resume.ok()) {
    if (StampFiles(data_dir, meta) == resume->files) {
      return {resume->have, absl::StrCat("resume data matches the files: ", resume->have.count(),
                                         "/", meta.num_pieces(), " pieces, recheck skipped")};
    }
    note = "files changed since the resume data was saved; rechecking";
  } else if (!absl::IsNotFound(resume.status())) {
    note = absl::StrCat("ignoring resume data (", resume.status().message(), "); rechecking");
  }
  // Checking creates nothing: a file that is missing (unwanted, or not started) has no piece.
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(
      data_dir, meta, OpenMode::kCreate, std::vector<bool>(meta.files.size(), false));
  if (!store.ok()) return {store.status(), note};
  absl::StatusOr<engine::Bitfield> have = CheckExistingData(**store, threads);
  if (have.ok() && have->count() > 0) {
    // The next start trusts this instead of hashing everything again; failing to write it only
    // costs that next start a recheck.
    (void)WriteResume(data_dir, **store, *have);
  }
  return {std::move(have), note};
}

TorrentChecker::TorrentChecker(int threads) : threads_(threads), thread_([this] { Loop(); }) {}

TorrentChecker::~TorrentChecker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

void TorrentChecker::Check(std::shared_ptr<const engine::Metainfo> meta, std::string data_dir,
                           DoneFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(Job{std::move(meta), std::move(data_dir), std::move(done)});
  }
  cv_.notify_one();
}

void TorrentChecker::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.done(CheckTorrentData(*job.meta, job.data_dir, threads_));
  }
}

}  // namespace torrenty::io
