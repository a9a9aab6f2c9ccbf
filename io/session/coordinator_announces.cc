// The coordinator's announces: every torrent's engine::Announcer asks the session-wide
// engine::AnnounceScheduler for a slot, and the granted announce goes out through the shared
// HTTP fetcher (libcurl thread) or the UDP transport (this ring).
#include <chrono>
#include <ctime>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "io/session/coordinator.h"

namespace torrenty::io {
namespace {

using engine::Instant;

constexpr int kAnnounceTimeoutMs = 15'000;

Instant Now() {
  using namespace std::chrono;
  return Instant{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// How an announce ended, for torrenty_announces_total. The announcer turns a tracker's failure
// reason (HTTP `failure reason`, UDP error action) into Unavailable("tracker URL: failure: ...").
metrics::AnnounceResult AnnounceOutcome(const absl::StatusOr<engine::AnnounceResponse>& resp) {
  if (resp.ok()) {
    return resp->failure_reason.empty() ? metrics::AnnounceResult::kSuccess
                                        : metrics::AnnounceResult::kTrackerFailure;
  }
  switch (resp.status().code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return metrics::AnnounceResult::kTimeout;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kResourceExhausted:  // body over the size limit
      return metrics::AnnounceResult::kInvalidResponse;
    case absl::StatusCode::kUnavailable:
      if (absl::StrContains(resp.status().message(), ": failure: ")) {
        return metrics::AnnounceResult::kTrackerFailure;
      }
      return metrics::AnnounceResult::kNetworkError;
    default:
      return metrics::AnnounceResult::kNetworkError;
  }
}

}  // namespace

bool Coordinator::EnsureTransports(const engine::Announcer& a) {
  if (a.has_http_trackers() && !http_) {
    absl::StatusOr<std::unique_ptr<HttpFetcher>> f = HttpFetcher::Create();
    if (!f.ok()) {
      Log(nullptr, absl::StrCat("HTTP trackers unavailable: ", f.status().message()));
      return false;
    }
    http_ = std::move(*f);
    ring_->Read(http_->notify_fd(), &http_evt_, sizeof(http_evt_), 0, &http_c_);
  }
  if (a.has_udp_trackers() && !udp_) {
    absl::BitGen gen;
    absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> u = UdpTrackerTransport::Create(
        ring_.get(),
        [this](uint64_t id, absl::StatusOr<engine::AnnounceResponse> r) {
          OnUdpResult(id, std::move(r));
        },
        absl::Uniform<uint64_t>(gen));
    if (!u.ok()) {
      Log(nullptr, absl::StrCat("UDP trackers unavailable: ", u.status().message()));
      return false;
    }
    udp_ = std::move(*u);
  }
  return true;
}

void Coordinator::PollAnnouncers(Instant now) {
  // UDP results may arrive synchronously from Tick/Announce; OnUdpResult then leaves polling to
  // this loop.
  if (in_poll_) return;
  in_poll_ = true;
  if (udp_) udp_->Tick(now);
  for (TorrentId id : order_) RequestAnnounce(*torrents_[id], now);
  scheduler_.Admit(now, &grants_);
  for (const engine::AnnounceScheduler::Grant& g : grants_) {
    TorrentEntry* e = Find(static_cast<TorrentId>(g.torrent));
    if (e == nullptr || !e->announcer) {
      scheduler_.Done(g.host);
      continue;
    }
    SendAnnounce(*e, g.host, now);
  }
  grants_.clear();
  in_poll_ = false;
}

void Coordinator::RequestAnnounce(TorrentEntry& e, Instant now) {
  if (!e.announcer || e.announce_in_flight) return;
  if (e.announcer->next_wakeup().ms > now.ms) return;
  const bool stop = e.announcer->next_event() == engine::AnnounceEvent::kStopped;
  if (stop && (stopping_ || e.state == TorrentEntry::State::kStopping)) {
    e.stop_announce_pending = true;
  }
  // A waiting request keeps its place in the queue; only a `stopped` replaces it (it goes first).
  if (scheduler_.waiting(e.id) && !stop) return;
  const bool needs_peers = !e.done() && e.peers_connected() == 0;
  scheduler_.Request(e.id, engine::TrackerHostKey(e.announcer->next_tracker_url()),
                     engine::AnnounceScheduler::PriorityFor(e.announcer->next_event(), needs_peers));
}

void Coordinator::SendAnnounce(TorrentEntry& e, const std::string& host, Instant now) {
  engine::TransferStats ts;
  ts.uploaded = e.uploaded();
  ts.downloaded = e.downloaded();
  ts.left = e.left();
  std::optional<engine::PendingAnnounce> a = e.announcer->Poll(now, ts);
  if (!a.has_value()) {
    scheduler_.Done(host);
    if (stopping_ || e.state == TorrentEntry::State::kStopping) {
      e.stop_announce_pending = e.announcer->stop_pending();
    }
    return;
  }
  if (stopping_ || e.state == TorrentEntry::State::kStopping) e.stop_announce_pending = true;
  const uint64_t rid = next_request_++;
  requests_[rid] = PendingRequest{e.id, a->id, host};
  e.announce_in_flight = true;
  if (a->transport == engine::PendingAnnounce::Transport::kUdp) {
    udp_->Announce(rid, a->udp_host, a->udp_port, a->params, a->udp_max_retransmits, now);
  } else {
    http_->Get(rid, a->url, kAnnounceTimeoutMs);
  }
}

// Every granted request's answer frees its host slot, also one its torrent no longer wants.
void Coordinator::AnnounceDone(const std::string& host, TorrentEntry* e) {
  scheduler_.Done(host);
  if (e != nullptr) e->announce_in_flight = false;
}

void Coordinator::OnHttpEvent(int32_t, uint32_t) {
  http_->TakeResults(&http_results_);
  const Instant now = Now();
  for (HttpResult& r : http_results_) {
    auto it = requests_.find(r.id);
    if (it == requests_.end()) continue;
    const PendingRequest req = it->second;
    requests_.erase(it);
    TorrentEntry* e = Find(req.torrent);
    AnnounceDone(req.host, e);
    if (e == nullptr || !e->announcer) continue;
    OnAnnounceResponse(*e, e->announcer->HandleResult(req.local_id, r.body, now), now);
  }
  http_results_.clear();
  ring_->Read(http_->notify_fd(), &http_evt_, sizeof(http_evt_), 0, &http_c_);
  PollAnnouncers(now);
}

// From UdpTrackerTransport: a completion (top level), or inside PollAnnouncer's Tick/Announce.
void Coordinator::OnUdpResult(uint64_t id, absl::StatusOr<engine::AnnounceResponse> result) {
  const Instant now = Now();
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  const PendingRequest req = it->second;
  requests_.erase(it);
  TorrentEntry* e = Find(req.torrent);
  AnnounceDone(req.host, e);
  if (e == nullptr || !e->announcer) return;
  absl::StatusOr<engine::AnnounceResponse> resp =
      e->announcer->HandleUdpResult(req.local_id, result, now);
  if (absl::IsFailedPrecondition(resp.status())) return;  // stale: abandoned by Stop
  OnAnnounceResponse(*e, std::move(resp), now);
  if (in_poll_) return;
  PollAnnouncers(now);
}

void Coordinator::OnAnnounceResponse(TorrentEntry& e,
                                     absl::StatusOr<engine::AnnounceResponse> resp, Instant now) {
  metrics_.announces_with(AnnounceOutcome(resp)).Add();
  if (stopping_ || e.state == TorrentEntry::State::kStopping) {
    // A `stopped` still waiting for a slot keeps the stop waiting (within its grace period).
    e.stop_announce_pending = scheduler_.waiting(e.id);
    return;
  }
  e.announced = true;
  e.last_announce_time = UnixNow();
  e.last_announce_ok = resp.ok() && resp->failure_reason.empty();
  if (e.last_announce_ok) {
    e.last_announce_peers = static_cast<int>(resp->peers.size());
    e.seeders = static_cast<int>(resp->complete);
    e.leechers = static_cast<int>(resp->incomplete);
  }
  if (!resp.ok()) {
    e.tracker_error = std::string(resp.status().message());
    Log(&e, e.tracker_error);  // "tracker URL: reason"
    return;
  }
  if (!resp->failure_reason.empty()) {
    e.tracker_error = absl::StrCat("tracker failure: ", resp->failure_reason);
    Log(&e, e.tracker_error);
    return;
  }
  e.tracker_error.clear();
  if (!resp->warning_message.empty())
    Log(&e, absl::StrCat("tracker warning: ", resp->warning_message));
  Log(&e,
      absl::StrCat("tracker: ", resp->peers.size(), " peers, interval ", resp->interval, " s",
                   resp->complete >= 0 ? absl::StrCat(", ", resp->complete, " seeders") : "",
                   resp->incomplete >= 0 ? absl::StrCat(", ", resp->incomplete, " leechers") : ""),
      /*verbose=*/true);
  (void)now;
  DistributePeers(e, resp->peers);
}

void Coordinator::CountTorrents() {
  std::array<int64_t, metrics::kTorrentStateCount> n{};
  for (const auto& [id, e] : torrents_) {
    metrics::TorrentState state = metrics::TorrentState::kStopped;
    switch (e->state) {
      case TorrentEntry::State::kChecking:
        state = metrics::TorrentState::kChecking;
        break;
      case TorrentEntry::State::kRunning:
        state =
            e->complete() ? metrics::TorrentState::kSeeding : metrics::TorrentState::kDownloading;
        break;
      case TorrentEntry::State::kStopped:
      case TorrentEntry::State::kStopping:
        break;
    }
    ++n[static_cast<size_t>(state)];
  }
  for (int i = 0; i < metrics::kTorrentStateCount; ++i) metrics_.torrents[i].Set(n[i]);
}

}  // namespace torrenty::io
