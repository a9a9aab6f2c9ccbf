#include "io/session/torrent_checker.h"

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "io/disk/file_store.h"
#include "io/disk/recheck.h"
#include "io/disk/resume_writer.h"

namespace torrenty::io {

CheckResult CheckTorrentData(const engine::Metainfo& meta, const std::string& data_dir,
                             const ResumeLocation& where, int threads) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(data_dir) / meta.name, ec)) {
    return {engine::Bitfield(meta.num_pieces()), ""};
  }
  std::string note;
  bool from_where = true;  // else from the download folder
  absl::StatusOr<engine::ResumeData> resume = LoadResume(where, meta);
  const ResumeLocation legacy = ResumeLocation::InDataDir(data_dir);
  if (absl::IsNotFound(resume.status()) && where.Path(meta) != legacy.Path(meta)) {
    resume = LoadResume(legacy, meta);
    from_where = false;
  }
  std::optional<engine::Bitfield> trusted;
  if (resume.ok()) {
    const std::string source = from_where ? "resume data" : "resume data in the download folder";
    switch (engine::TrustResume(*resume, StampFiles(data_dir, meta))) {
      case engine::ResumeTrust::kExact:
        return {resume->have,
                absl::StrCat(source, " matches the files: ", resume->have.count(), "/",
                             meta.num_pieces(), " pieces, recheck skipped"),
                /*resume_current=*/true};
      case engine::ResumeTrust::kLive:
        note = absl::StrCat(source, " saved while running: ", resume->have.count(), "/",
                            meta.num_pieces(), " pieces trusted, checking only the others");
        trusted = std::move(resume->have);
        break;
      case engine::ResumeTrust::kNone:
        note = "files changed since the resume data was saved; rechecking";
        break;
    }
  } else if (!absl::IsNotFound(resume.status())) {
    note = absl::StrCat("ignoring resume data (", resume.status().message(), "); rechecking");
  }
  // Checking creates nothing: a file that is missing (unwanted, or not started) has no piece.
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(
      data_dir, meta, OpenMode::kCreate, std::vector<bool>(meta.files.size(), false));
  if (!store.ok()) return {store.status(), note};
  absl::StatusOr<engine::Bitfield> have =
      CheckExistingData(**store, threads, nullptr, trusted ? &*trusted : nullptr);
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
                           ResumeLocation where, DoneFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(Job{std::move(meta), std::move(data_dir), std::move(where), std::move(done)});
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
    job.done(CheckTorrentData(*job.meta, job.data_dir, job.where, threads_));
  }
}

}  // namespace torrenty::io
