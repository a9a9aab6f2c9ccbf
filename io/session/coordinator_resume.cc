// The coordinator's resume data: snapshots of each torrent's have-set go to the session's one
// ResumeWriter (io/disk/resume_writer.h), at most every kResumeSaveMs while pieces arrive, when a
// torrent stops or is checked, and at the end; results come back through the mailbox.
#include <string>

#include "absl/strings/str_cat.h"
#include "io/session/coordinator.h"

namespace torrenty::io {
namespace {

constexpr int64_t kResumeSaveMs = 5'000;

}  // namespace

using engine::Instant;

// At most every kResumeSaveMs, and only when pieces were added: a kill -9 then loses at most
// that long of claimed progress, and the data itself is still found by the recheck.
void Coordinator::MaybeSaveResume(TorrentEntry& e, Instant now) {
  if (!e.saves_resume || stopping_) return;
  if (now.ms - e.last_resume_save.ms < kResumeSaveMs) return;
  if (e.have.count() == e.resume_saved_count) return;
  e.last_resume_save = now;
  SubmitResume(e, /*live=*/true);
}

ResumeLocation Coordinator::ResumeWhere(const TorrentEntry& e) const {
  return env_.config->state_dir.empty() ? ResumeLocation::InDataDir(e.data_dir)
                                        : ResumeLocation::InStateDir(env_.config->state_dir);
}

// One writer thread for the session rather than async writes on this ring: a save is a chain of
// blocking calls (openat2 and fdatasync per file, write, fsync, rename) that the checker shares,
// and coalescing bounds its queue at one snapshot per torrent.
ResumeWriter& Coordinator::resume_writer() {
  if (!resume_writer_) {
    resume_writer_ = std::make_unique<ResumeWriter>([this](uint64_t tag, const absl::Status& st) {
      CoordinatorMessage m;
      m.type = CoordinatorMessage::Type::kCall;
      const TorrentId id = static_cast<TorrentId>(tag);
      const bool ok = st.ok();
      std::string error(st.message());
      m.call = [this, id, ok, error = std::move(error)] { OnResumeDone(id, ok, error); };
      inbox_.Post(std::move(m));
    });
  }
  return *resume_writer_;
}

void Coordinator::SubmitResume(TorrentEntry& e, bool live, bool optional) {
  ResumeJob job;
  job.tag = e.id;
  job.meta = e.meta;
  job.data_dir = e.data_dir;
  job.where = ResumeWhere(e);
  job.have = e.have;
  job.live = live;
  job.optional = optional;
  e.resume_saved_count = e.have.count();
  e.resume_saved_live = live;
  ++e.resume_pending;
  resume_writer().Submit(std::move(job));
}

void Coordinator::OnResumeDone(TorrentId id, bool ok, const std::string& error) {
  TorrentEntry* e = Find(id);
  if (e == nullptr || e->resume_pending == 0) return;
  --e->resume_pending;
  if (!ok) {
    Log(e, absl::StrCat("resume: ", error));
    e->resume_saved_count = UINT32_MAX;  // the next tick tries again
  }
  if (e->resume_pending == 0 && e->verify_after_resume) {
    e->verify_after_resume = false;
    Verify(id);
  }
}

}  // namespace torrenty::io
