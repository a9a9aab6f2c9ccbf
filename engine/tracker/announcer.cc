// BEP 12 tiered announce scheduling with backoff; see announcer.h for the policy.
#include "engine/tracker/announcer.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/tracker/udp_tracker.h"

namespace torrenty::engine {
namespace {

// Seconds from a tracker, converted to ms and clamped without overflowing on absurd values.
int64_t ClampSecondsToMs(int64_t seconds, int64_t min_ms, int64_t max_ms) {
  const int64_t capped = std::min(seconds, max_ms / 1000 + 1);
  return std::clamp(capped * 1000, min_ms, max_ms);
}

absl::Status WithTracker(const absl::Status& s, std::string_view url) {
  return absl::Status(s.code(), absl::StrCat("tracker ", absl::string_view(url.data(), url.size()),
                                             ": ", s.message()));
}

}  // namespace

Announcer::Announcer(Config config, std::vector<std::vector<std::string>> tiers, uint64_t seed)
    : config_(config) {
  // A fixed algorithm (not std::shuffle, whose result differs between standard libraries) keeps
  // the order reproducible from the seed.
  std::mt19937_64 rng(seed);
  absl::flat_hash_set<std::string> seen;
  for (std::vector<std::string>& tier : tiers) {
    std::vector<Tracker> trackers;
    for (std::string& raw : tier) {
      std::string url(absl::StripAsciiWhitespace(raw));
      if (url.empty() || !seen.insert(url).second) continue;
      if (IsHttpTrackerUrl(url)) {
        if (!BuildAnnounceUrl(url, AnnounceParams{}).ok()) continue;
        Tracker t;
        t.url = std::move(url);
        trackers.push_back(std::move(t));
        ++http_count_;
      } else if (absl::StatusOr<UdpTrackerEndpoint> ep = ParseUdpTrackerUrl(url); ep.ok()) {
        udp_trackers_.push_back(url);
        Tracker t;
        t.url = std::move(url);
        t.udp = true;
        t.udp_host = std::move(ep->host);
        t.udp_port = ep->port;
        trackers.push_back(std::move(t));
      }
    }
    if (trackers.empty()) continue;
    tracker_count_ += trackers.size();
    for (size_t i = trackers.size() - 1; i > 0; --i) {
      std::swap(trackers[i], trackers[rng() % (i + 1)]);
    }
    tiers_.push_back(std::move(trackers));
  }
}

bool Announcer::has_trackers() const { return !tiers_.empty(); }

std::optional<PendingAnnounce> Announcer::Poll(Instant now, const TransferStats& stats) {
  if (state_ == State::kStopSent || state_ == State::kStopped) return std::nullopt;
  if (in_flight_.has_value() || tiers_.empty() || now < next_announce_) return std::nullopt;

  size_t tier = cursor_tier_;
  size_t index = cursor_index_;
  AnnounceParams params;
  params.info_hash = config_.info_hash;
  params.peer_id = config_.peer_id;
  params.port = config_.port;
  params.uploaded = stats.uploaded;
  params.downloaded = stats.downloaded;
  params.left = stats.left;
  params.numwant = config_.numwant;
  if (state_ == State::kStopPending) {
    tier = stop_tier_;
    index = stop_index_;
    params.event = AnnounceEvent::kStopped;
    params.numwant = 0;  // We will not connect to anyone any more.
  } else if (completed_pending_) {
    params.event = AnnounceEvent::kCompleted;
  } else if (!tiers_[tier][index].started) {
    params.event = AnnounceEvent::kStarted;
  }
  const Tracker& tracker = tiers_[tier][index];
  params.tracker_id = tracker.tracker_id;

  if (tracker.udp) {
    if (state_ == State::kStopPending) state_ = State::kStopSent;
    PendingAnnounce pending;
    pending.id = next_id_++;
    pending.transport = PendingAnnounce::Transport::kUdp;
    pending.url = tracker.url;
    pending.event = params.event;
    pending.udp_host = tracker.udp_host;
    pending.udp_port = tracker.udp_port;
    pending.udp_max_retransmits = params.event == AnnounceEvent::kStopped ? 0
                                  : tracker_count_ > 1 ? kUdpRetransmitsWithFallback
                                                       : kUdpMaxRetransmits;
    pending.params = std::move(params);
    in_flight_ = InFlight{pending.id, tier, index, pending.event};
    ever_sent_ = true;
    last_sent_tier_ = tier;
    last_sent_index_ = index;
    return pending;
  }

  // Cannot fail for URLs the constructor accepted; handled anyway rather than trusted.
  absl::StatusOr<std::string> url = BuildAnnounceUrl(tracker.url, params);
  if (!url.ok()) {
    if (state_ == State::kStopPending) {
      state_ = State::kStopped;
    } else {
      OnFailure(now);
    }
    return std::nullopt;
  }
  if (state_ == State::kStopPending) state_ = State::kStopSent;
  const uint64_t id = next_id_++;
  in_flight_ = InFlight{id, tier, index, params.event};
  ever_sent_ = true;
  last_sent_tier_ = tier;
  last_sent_index_ = index;
  PendingAnnounce pending;
  pending.id = id;
  pending.url = *std::move(url);
  pending.event = params.event;
  return pending;
}

absl::StatusOr<AnnounceResponse> Announcer::HandleResult(uint64_t id,
                                                         const absl::StatusOr<std::string>& body,
                                                         Instant now) {
  if (!in_flight_.has_value() || in_flight_->id != id) {
    return absl::FailedPreconditionError(absl::StrCat("stale announce result ", id));
  }
  return HandleParsed(
      id,
      body.ok() ? ParseAnnounceResponse(*body) : absl::StatusOr<AnnounceResponse>(body.status()),
      now);
}

absl::StatusOr<AnnounceResponse> Announcer::HandleUdpResult(
    uint64_t id, const absl::StatusOr<AnnounceResponse>& result, Instant now) {
  if (!in_flight_.has_value() || in_flight_->id != id) {
    return absl::FailedPreconditionError(absl::StrCat("stale announce result ", id));
  }
  return HandleParsed(id, result, now);
}

absl::StatusOr<AnnounceResponse> Announcer::HandleParsed(uint64_t id,
                                                         absl::StatusOr<AnnounceResponse> parsed,
                                                         Instant now) {
  if (!in_flight_.has_value() || in_flight_->id != id) {
    return absl::FailedPreconditionError(absl::StrCat("stale announce result ", id));
  }
  const InFlight request = *in_flight_;
  in_flight_.reset();
  const std::string url = tiers_[request.tier][request.index].url;

  if (parsed.ok() && !parsed->failure_reason.empty()) {
    parsed = absl::UnavailableError(absl::StrCat("failure: ", parsed->failure_reason));
  }

  if (state_ == State::kStopSent) {
    // The goodbye is best effort: whatever happened, we are done.
    state_ = State::kStopped;
    if (!parsed.ok()) return WithTracker(parsed.status(), url);
    return parsed;
  }
  if (state_ == State::kStopPending) {
    // The `completed` that Stop() let finish: the goodbye follows at once, to this tracker if it
    // answered.
    if (parsed.ok()) {
      stop_tier_ = request.tier;
      stop_index_ = request.index;
    }
    next_announce_ = now;
    if (!parsed.ok()) return WithTracker(parsed.status(), url);
    return parsed;
  }
  if (!parsed.ok()) {
    OnFailure(now);
    return WithTracker(parsed.status(), url);
  }

  std::vector<Tracker>& tier = tiers_[request.tier];
  Tracker& tracker = tier[request.index];
  tracker.started = true;
  if (!parsed->tracker_id.empty()) tracker.tracker_id = parsed->tracker_id;
  if (request.event == AnnounceEvent::kCompleted) completed_pending_ = false;
  // BEP 12: a tracker that answered moves to the front of its tier.
  std::rotate(tier.begin(), tier.begin() + static_cast<ptrdiff_t>(request.index),
              tier.begin() + static_cast<ptrdiff_t>(request.index) + 1);
  last_good_tier_ = request.tier;
  last_good_index_ = 0;
  last_success_ = now;
  failing_ = false;
  backoff_ms_ = kInitialBackoffMs;
  cursor_tier_ = 0;
  cursor_index_ = 0;
  min_interval_ms_ = parsed->min_interval > 0
                         ? ClampSecondsToMs(parsed->min_interval, kMinIntervalMs, kMaxIntervalMs)
                         : kDefaultMinIntervalMs;
  const int64_t interval_ms =
      parsed->interval > 0 ? ClampSecondsToMs(parsed->interval, kMinIntervalMs, kMaxIntervalMs)
                           : kDefaultIntervalMs;
  // Completed() may have been called while this request was in flight.
  next_announce_ = completed_pending_ ? now : Instant{now.ms + interval_ms};
  return parsed;
}

bool Announcer::Advance() {
  if (cursor_index_ + 1 < tiers_[cursor_tier_].size()) {
    ++cursor_index_;
    return true;
  }
  cursor_index_ = 0;
  if (cursor_tier_ + 1 < tiers_.size()) {
    ++cursor_tier_;
    return true;
  }
  cursor_tier_ = 0;
  return false;
}

void Announcer::OnFailure(Instant now) {
  if (Advance()) {
    next_announce_ = now;
    return;
  }
  next_announce_ = Instant{now.ms + backoff_ms_};
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
  failing_ = true;
}

void Announcer::NeedPeers(Instant now) {
  if (state_ != State::kRunning || !last_success_.has_value() || failing_) return;
  const Instant earliest{std::max(now.ms, last_success_->ms + min_interval_ms_)};
  next_announce_ = std::min(next_announce_, earliest);
}

void Announcer::Completed(Instant now) {
  if (state_ != State::kRunning) return;
  completed_pending_ = true;
  next_announce_ = std::min(next_announce_, now);
}

void Announcer::Stop(Instant now) {
  if (state_ != State::kRunning) return;
  // A `completed` under way is let finish before `stopped` goes out: sent side by side, the two
  // may reach the tracker in either order, and one that hears `stopped` first never learns that
  // the download completed.
  const bool completed_in_flight =
      in_flight_.has_value() && in_flight_->event == AnnounceEvent::kCompleted;
  if (!completed_in_flight) in_flight_.reset();
  if (!ever_sent_ || tiers_.empty()) {
    state_ = State::kStopped;
    return;
  }
  state_ = State::kStopPending;
  if (last_success_.has_value()) {
    stop_tier_ = last_good_tier_;
    stop_index_ = last_good_index_;
  } else {
    stop_tier_ = last_sent_tier_;
    stop_index_ = last_sent_index_;
  }
  next_announce_ = now;
}

const std::string& Announcer::next_tracker_url() const {
  static const std::string kNoUrl;
  if (tiers_.empty()) return kNoUrl;
  if (state_ == State::kStopPending) return tiers_[stop_tier_][stop_index_].url;
  return tiers_[cursor_tier_][cursor_index_].url;
}

AnnounceEvent Announcer::next_event() const {
  if (state_ == State::kStopPending) return AnnounceEvent::kStopped;
  if (completed_pending_) return AnnounceEvent::kCompleted;
  if (!tiers_.empty() && !tiers_[cursor_tier_][cursor_index_].started) {
    return AnnounceEvent::kStarted;
  }
  return AnnounceEvent::kNone;
}

Instant Announcer::next_wakeup() const {
  if (state_ == State::kStopSent || state_ == State::kStopped) return kNever;
  if (in_flight_.has_value() || tiers_.empty()) return kNever;
  return next_announce_;
}

}  // namespace torrenty::engine
