// The coordinator's queues (download and seed) and seed limits (ratio and idle time), and a
// torrent's super-seeding switch. The decisions are engine/session's pure functions; this file
// feeds them the torrents and the clock.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "io/session/coordinator.h"

namespace torrenty::io {
namespace {

engine::QueueKind KindOf(const TorrentEntry& e) {
  return e.done() ? engine::QueueKind::kSeed : engine::QueueKind::kDownload;
}

// now: the coordinator's last tick (stalls are counted in minutes).
bool TakesSlot(const TorrentEntry& e, const engine::QueueLimits& limits, engine::Instant now) {
  if (e.force_start || e.state != TorrentEntry::State::kRunning) return false;
  return e.done() || !engine::QueueStalled(limits, now.ms - e.moving_since.ms);
}

}  // namespace

void Coordinator::SetLimits(const engine::SessionSeedLimits& seed,
                            const engine::QueueLimits& queue) {
  seed_limits_ = seed;
  queue_limits_ = queue;
  RunQueue();
}

void Coordinator::Admit(TorrentEntry& e) {
  const engine::QueueKind kind = KindOf(e);
  const bool queue_on = kind == engine::QueueKind::kDownload ? queue_limits_.download_enabled
                                                             : queue_limits_.seed_enabled;
  if (!e.force_start && queue_on) {
    int active = 0;
    for (const auto& [id, t] : torrents_) {
      if (TakesSlot(*t, queue_limits_, last_tick_) && KindOf(*t) == kind) ++active;
    }
    if (!engine::QueueHasRoom(queue_limits_, kind, active)) {
      e.queued = true;
      return;
    }
  }
  e.queued = false;
  Activate(e);
}

void Coordinator::RunQueue() {
  if (stopping_) return;
  bool any_waiting = false;
  for (const auto& [id, t] : torrents_) any_waiting = any_waiting || t->queued;
  if (!any_waiting) return;
  std::vector<engine::QueueSlot> slots;
  slots.reserve(queue_.size());
  for (TorrentId id : queue_) {
    const TorrentEntry& e = *torrents_[id];
    slots.push_back(
        engine::QueueSlot{id, KindOf(e), TakesSlot(e, queue_limits_, last_tick_),
                          e.queued && !e.paused && e.state == TorrentEntry::State::kStopped});
  }
  for (uint32_t id : engine::TorrentsToStart(queue_limits_, slots)) {
    TorrentEntry& e = *torrents_[id];
    e.queued = false;
    Activate(e);
  }
}

void Coordinator::StartNow(TorrentId id) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  e->force_start = true;
  if (e->queued && e->state == TorrentEntry::State::kStopped && !stopping_) {
    e->queued = false;
    e->paused = false;
    Activate(*e);
    return;
  }
  Start(id);
}

void Coordinator::RenumberQueue() {
  for (size_t i = 0; i < queue_.size(); ++i) {
    torrents_[queue_[i]]->queue_position = static_cast<int>(i);
  }
}

void Coordinator::MoveInQueue(const std::vector<TorrentId>& ids, engine::QueueMove how) {
  const absl::flat_hash_set<TorrentId> selected(ids.begin(), ids.end());
  engine::MoveInQueue(&queue_, how, [&](uint32_t id) { return selected.contains(id); });
  RenumberQueue();
}

void Coordinator::SetQueuePosition(TorrentId id, int position) {
  engine::SetQueuePosition(&queue_, id, static_cast<size_t>(std::max(0, position)));
  RenumberQueue();
}

engine::SeedStop Coordinator::SeedLimitReached(const TorrentEntry& e, engine::Instant now) const {
  if (!e.done()) return engine::SeedStop::kKeepSeeding;
  engine::SeedCounters c;
  c.uploaded = e.uploaded();
  c.downloaded = e.downloaded();
  c.size_when_done = e.wanted_bytes();
  c.idle_ms = now.ms - e.seeding_since.ms;
  return engine::CheckSeedLimits(seed_limits_, e.seed_limits, c);
}

bool Coordinator::CheckSeedLimits(TorrentEntry& e, engine::Instant now) {
  if (e.state != TorrentEntry::State::kRunning || !e.completed_event) return false;
  const engine::SeedStop stop = SeedLimitReached(e, now);
  if (stop == engine::SeedStop::kKeepSeeding) return false;
  engine::SeedCounters c{e.uploaded(), e.downloaded(), e.wanted_bytes(), 0};
  if (stop == engine::SeedStop::kRatioReached) {
    Log(&e, absl::StrFormat("seed ratio %.2f reached (limit %.2f): stopping", engine::SeedRatio(c),
                            engine::EffectiveRatioLimit(seed_limits_, e.seed_limits).value_or(0)));
  } else {
    Log(&e, absl::StrFormat("idle for %d minutes while seeding: stopping",
                            engine::EffectiveIdleMinutes(seed_limits_, e.seed_limits).value_or(0)));
  }
  e.finished = true;
  e.paused = true;
  Stop(e.id);
  if (env_.config->on_torrent_changed) env_.config->on_torrent_changed(e.id);
  return true;
}

// BEP 16, per torrent (torrent-set superSeed).
void Coordinator::SetSuperSeed(TorrentId id, bool on) {
  TorrentEntry* e = Find(id);
  if (e == nullptr) return;
  const bool was = e->super_seed.value_or(env_.config->super_seed);
  e->super_seed = on;
  // The shards' engines take the setting when the torrent starts.
  if (was == on || e->state != TorrentEntry::State::kRunning) return;
  Stop(id, [this, id] {
    TorrentEntry* t = Find(id);
    if (t != nullptr && !t->paused && t->state == TorrentEntry::State::kStopped && !stopping_) {
      Activate(*t);
    }
  });
}

}  // namespace torrenty::io
