// Host-name resolutions kept for a TTL, sans-I/O (fed time): one lookup per host per TTL however
// many torrents announce to it, lookups of one host coalesced while one is under way, and failures
// remembered briefly, so a tracker whose name does not resolve is not looked up again on every
// announce of every torrent. Bounded: past `max_entries` the entry closest to expiry goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/types.h"

namespace torrenty::engine {

class ResolveCache {
 public:
  struct Config {
    // getaddrinfo does not report the record's TTL; 5 min is what libcurl's connection reuse
    // and most resolvers' minimum TTLs make safe, and still follows a tracker that moves.
    int64_t ttl_ms = 300'000;
    int64_t negative_ttl_ms = 30'000;
    size_t max_entries = 1024;
  };

  struct Result {
    enum class Kind {
      // Not known: the caller resolves it and reports with Resolved(). Until then, Find says
      // kPending for this host.
      kStartLookup,
      kPending,
      kAddress,
      kFailed,
    };
    Kind kind = Kind::kStartLookup;
    uint32_t ipv4 = 0;   // kAddress: host byte order
    absl::Status error;  // kFailed: the lookup's error
  };

  ResolveCache() : ResolveCache(Config{}) {}
  explicit ResolveCache(Config config) : config_(config) {}

  // Host names compare case-insensitively.
  Result Find(std::string_view host, Instant now);
  // The outcome of a lookup Find asked for (or any other): cached for ttl_ms, or negative_ttl_ms
  // for an error.
  void Resolved(std::string_view host, const absl::StatusOr<uint32_t>& ipv4, Instant now);

  size_t size() const { return entries_.size(); }
  // kStartLookup answers so far: the lookups this cache let through.
  uint64_t lookups() const { return lookups_; }

 private:
  struct Entry {
    bool pending = false;
    uint32_t ipv4 = 0;
    absl::Status error;
    int64_t expires_ms = 0;
  };
  static Entry PendingEntry();
  // Makes room for one more entry; false when every entry is a lookup under way.
  bool MakeRoom(Instant now);

  Config config_;
  absl::flat_hash_map<std::string, Entry> entries_;
  uint64_t lookups_ = 0;
};

}  // namespace torrenty::engine
