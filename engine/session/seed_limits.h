// When a seeding torrent has given enough: Transmission's seed ratio and idle seeding limits, as a
// pure function of the settings and the torrent's counters (the coordinator feeds it the clock).
#pragma once

#include <cstdint>
#include <optional>

namespace torrenty::engine {

// rpc-spec's seedRatioMode / seedIdleMode.
enum class SeedLimitMode : int { kGlobal = 0, kSingle = 1, kUnlimited = 2 };

struct SessionSeedLimits {
  bool ratio_limited = false;
  double ratio_limit = 2.0;
  bool idle_limited = false;
  int64_t idle_minutes = 30;
};

struct TorrentSeedLimits {
  SeedLimitMode ratio_mode = SeedLimitMode::kGlobal;
  double ratio_limit = 2.0;
  SeedLimitMode idle_mode = SeedLimitMode::kGlobal;
  int64_t idle_minutes = 30;
  friend bool operator==(const TorrentSeedLimits&, const TorrentSeedLimits&) = default;
};

struct SeedCounters {
  int64_t uploaded = 0;    // payload bytes over every run
  int64_t downloaded = 0;  // payload bytes over every run
  int64_t size_when_done = 0;
  int64_t idle_ms = 0;  // since the last payload byte was uploaded (or seeding began)
};

enum class SeedStop { kKeepSeeding, kRatioReached, kIdleReached };

// The limit that applies, if any.
std::optional<double> EffectiveRatioLimit(const SessionSeedLimits& session,
                                          const TorrentSeedLimits& torrent);
std::optional<int64_t> EffectiveIdleMinutes(const SessionSeedLimits& session,
                                            const TorrentSeedLimits& torrent);
// Uploaded over downloaded, as Transmission counts it: a torrent that downloaded nothing (it was
// seeded from data already there) is measured against its size.
double SeedRatio(const SeedCounters& c);
// Only for a torrent that has everything it wants.
SeedStop CheckSeedLimits(const SessionSeedLimits& session, const TorrentSeedLimits& torrent,
                         const SeedCounters& c);

}  // namespace torrenty::engine
