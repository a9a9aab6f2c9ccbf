// Resolution cache with TTLs; see resolve_cache.h.
#include "engine/tracker/resolve_cache.h"

#include "absl/strings/ascii.h"

namespace torrenty::engine {
namespace {

std::string Key(std::string_view host) {
  return absl::AsciiStrToLower(absl::string_view(host.data(), host.size()));
}

}  // namespace

ResolveCache::Entry ResolveCache::PendingEntry() {
  Entry e;
  e.pending = true;
  return e;
}

ResolveCache::Result ResolveCache::Find(std::string_view host, Instant now) {
  const std::string key = Key(host);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    const Entry& e = it->second;
    if (e.pending) return Result{Result::Kind::kPending, 0, absl::OkStatus()};
    if (now.ms < e.expires_ms) {
      if (e.error.ok()) return Result{Result::Kind::kAddress, e.ipv4, absl::OkStatus()};
      return Result{Result::Kind::kFailed, 0, e.error};
    }
    it->second = PendingEntry();
  } else if (MakeRoom(now)) {
    entries_.emplace(key, PendingEntry());
  }
  ++lookups_;
  return Result{Result::Kind::kStartLookup, 0, absl::OkStatus()};
}

void ResolveCache::Resolved(std::string_view host, const absl::StatusOr<uint32_t>& ipv4,
                            Instant now) {
  const std::string key = Key(host);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (!MakeRoom(now)) return;
    it = entries_.emplace(key, Entry{}).first;
  }
  Entry& e = it->second;
  e.pending = false;
  if (ipv4.ok()) {
    e.ipv4 = *ipv4;
    e.error = absl::OkStatus();
    e.expires_ms = now.ms + config_.ttl_ms;
  } else {
    e.ipv4 = 0;
    e.error = ipv4.status();
    e.expires_ms = now.ms + config_.negative_ttl_ms;
  }
}

bool ResolveCache::MakeRoom(Instant now) {
  if (entries_.size() < config_.max_entries) return true;
  absl::erase_if(entries_, [&](const auto& kv) {
    return !kv.second.pending && kv.second.expires_ms <= now.ms;
  });
  if (entries_.size() < config_.max_entries) return true;
  auto victim = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second.pending) continue;
    if (victim == entries_.end() || it->second.expires_ms < victim->second.expires_ms) victim = it;
  }
  if (victim == entries_.end()) return false;
  entries_.erase(victim);
  return true;
}

}  // namespace torrenty::engine
