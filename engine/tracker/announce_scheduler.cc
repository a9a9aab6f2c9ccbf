// Session-wide announce admission; see announce_scheduler.h for the policy.
#include "engine/tracker/announce_scheduler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace torrenty::engine {
namespace {

// Debian's abseil has its own string_view, which the maps' heterogeneous lookup expects.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

std::string TrackerHostKey(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return std::string(url);
  const std::string scheme = absl::AsciiStrToLower(Sv(url.substr(0, scheme_end)));
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string_view host = rest;
  std::string_view port;
  if (absl::StartsWith(Sv(rest), "[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::string(url);
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return std::string(url);
      port = rest.substr(close + 2);
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  uint32_t port_number = 0;
  if (port.empty()) {
    if (scheme == "http") port_number = 80;
    if (scheme == "https") port_number = 443;
  } else if (!absl::SimpleAtoi(Sv(port), &port_number) || port_number > 65535) {
    return std::string(url);
  }
  if (host.empty() || port_number == 0) return std::string(url);
  return absl::StrCat(scheme, "://", absl::AsciiStrToLower(Sv(host)), ":", port_number);
}

AnnounceScheduler::AnnounceScheduler(Config config)
    : config_(config),
      rng_(config.seed),
      lone_tokens_ms_(static_cast<int64_t>(std::max(config.lone_burst, 0)) *
                      config.lone_refill_ms) {}

AnnounceScheduler::Priority AnnounceScheduler::PriorityFor(AnnounceEvent event, bool needs_peers) {
  if (event == AnnounceEvent::kStopped) return Priority::kStop;
  if (event == AnnounceEvent::kCompleted || needs_peers) return Priority::kUrgent;
  return Priority::kRoutine;
}

Instant AnnounceScheduler::AddTorrent(TorrentId torrent, Instant now, bool needs_peers) {
  if (auto it = torrents_.find(torrent); it != torrents_.end()) return it->second.first_at;
  // Refill the immediate-start burst for the time since the last add.
  const int64_t capacity =
      static_cast<int64_t>(std::max(config_.lone_burst, 0)) * config_.lone_refill_ms;
  if (now.ms > lone_last_ms_) {
    lone_tokens_ms_ = std::min(capacity, lone_tokens_ms_ + (now.ms - lone_last_ms_));
    lone_last_ms_ = now.ms;
  }
  Instant first = now;
  if (!needs_peers) {
    if (config_.lone_burst > 0 && lone_tokens_ms_ >= config_.lone_refill_ms) {
      lone_tokens_ms_ -= config_.lone_refill_ms;
    } else {
      const int64_t window =
          std::max<int64_t>(std::min(config_.interval_ms, config_.max_spread_ms), 1);
      first = Instant{now.ms + static_cast<int64_t>(rng_() % static_cast<uint64_t>(window))};
    }
  }
  torrents_[torrent].first_at = first;
  return first;
}

void AnnounceScheduler::RemoveTorrent(TorrentId torrent) {
  auto it = torrents_.find(torrent);
  if (it == torrents_.end()) return;
  Unlink(torrent, it->second);
  torrents_.erase(it);
}

AnnounceScheduler::Host& AnnounceScheduler::HostFor(std::string_view key) {
  auto [it, inserted] = hosts_.try_emplace(std::string(key));
  if (inserted) {
    it->second.key = it->first;
    const bool udp = absl::StartsWithIgnoreCase(Sv(key), "udp://");
    it->second.cap = std::max(udp ? config_.max_per_udp_host : config_.max_per_host, 1);
  }
  return it->second;
}

void AnnounceScheduler::Request(TorrentId torrent, std::string_view host, Priority priority) {
  auto [it, added] = torrents_.try_emplace(torrent);
  Torrent& t = it->second;
  if (added) t.first_done = true;  // Never added: no hold.
  Unlink(torrent, t);
  t.host = std::string(host);
  t.priority = priority;
  if (!t.first_done && priority != Priority::kStop) {
    t.state = Torrent::State::kHeld;
    t.queue_key = QueueKey{0, next_seq_++};
    held_.emplace(t.first_at.ms, t.queue_key.second, torrent);
    return;
  }
  Enqueue(torrent, t);
}

void AnnounceScheduler::Enqueue(TorrentId id, Torrent& t) {
  t.first_done = true;
  t.state = Torrent::State::kQueued;
  t.queue_key = QueueKey{static_cast<uint8_t>(t.priority), next_seq_++};
  Host& host = HostFor(t.host);
  host.queue.emplace(t.queue_key, id);
  ++queued_count_;
  RefreshReady(host);
}

void AnnounceScheduler::Unlink(TorrentId id, Torrent& t) {
  switch (t.state) {
    case Torrent::State::kIdle:
      return;
    case Torrent::State::kHeld:
      held_.erase({t.first_at.ms, t.queue_key.second, id});
      break;
    case Torrent::State::kQueued: {
      auto it = hosts_.find(t.host);
      if (it != hosts_.end()) {
        it->second.queue.erase(t.queue_key);
        --queued_count_;
        RefreshReady(it->second);
      }
      DropIfIdle(t.host);
      break;
    }
  }
  t.state = Torrent::State::kIdle;
}

void AnnounceScheduler::Cancel(TorrentId torrent) {
  auto it = torrents_.find(torrent);
  if (it != torrents_.end()) Unlink(torrent, it->second);
}

bool AnnounceScheduler::waiting(TorrentId torrent) const {
  auto it = torrents_.find(torrent);
  return it != torrents_.end() && it->second.state != Torrent::State::kIdle;
}

void AnnounceScheduler::RefreshReady(Host& host) {
  const bool has_slot = host.in_flight < host.cap && !host.queue.empty();
  auto current = ready_key_.find(host.key);
  if (current != ready_key_.end()) {
    if (has_slot && current->second == host.queue.begin()->first) return;
    ready_.erase({current->second, host.key});
    ready_key_.erase(current);
  }
  if (!has_slot) return;
  const QueueKey head = host.queue.begin()->first;
  ready_.emplace(head, host.key);
  ready_key_.emplace(host.key, head);
}

void AnnounceScheduler::DropIfIdle(std::string_view key) {
  auto it = hosts_.find(Sv(key));
  if (it != hosts_.end() && it->second.in_flight == 0 && it->second.queue.empty()) {
    hosts_.erase(it);
  }
}

void AnnounceScheduler::Admit(Instant now, std::vector<Grant>* out) {
  while (!held_.empty() && std::get<0>(*held_.begin()) <= now.ms) {
    const TorrentId id = std::get<2>(*held_.begin());
    held_.erase(held_.begin());
    Torrent& t = torrents_[id];
    t.state = Torrent::State::kIdle;
    Enqueue(id, t);
  }
  while (in_flight_ < config_.max_in_flight && !ready_.empty()) {
    const std::string key = ready_.begin()->second;
    Host& host = hosts_[key];
    const TorrentId id = host.queue.begin()->second;
    host.queue.erase(host.queue.begin());
    --queued_count_;
    ++host.in_flight;
    ++in_flight_;
    RefreshReady(host);
    torrents_[id].state = Torrent::State::kIdle;
    out->push_back(Grant{id, key});
  }
}

bool AnnounceScheduler::Done(std::string_view host_key) {
  auto it = hosts_.find(Sv(host_key));
  if (it == hosts_.end() || it->second.in_flight == 0) return false;
  --it->second.in_flight;
  --in_flight_;
  RefreshReady(it->second);
  DropIfIdle(host_key);
  return true;
}

Instant AnnounceScheduler::NextTimeout() const {
  if (held_.empty()) return kNever;
  return Instant{std::get<0>(*held_.begin())};
}

int AnnounceScheduler::in_flight(std::string_view host) const {
  auto it = hosts_.find(Sv(host));
  return it == hosts_.end() ? 0 : it->second.in_flight;
}

}  // namespace torrenty::engine
