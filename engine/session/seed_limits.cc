#include "engine/session/seed_limits.h"

namespace torrenty::engine {

std::optional<double> EffectiveRatioLimit(const SessionSeedLimits& session,
                                          const TorrentSeedLimits& torrent) {
  switch (torrent.ratio_mode) {
    case SeedLimitMode::kSingle:
      return torrent.ratio_limit;
    case SeedLimitMode::kUnlimited:
      return std::nullopt;
    case SeedLimitMode::kGlobal:
      break;
  }
  if (!session.ratio_limited) return std::nullopt;
  return session.ratio_limit;
}

std::optional<int64_t> EffectiveIdleMinutes(const SessionSeedLimits& session,
                                            const TorrentSeedLimits& torrent) {
  switch (torrent.idle_mode) {
    case SeedLimitMode::kSingle:
      return torrent.idle_minutes;
    case SeedLimitMode::kUnlimited:
      return std::nullopt;
    case SeedLimitMode::kGlobal:
      break;
  }
  if (!session.idle_limited) return std::nullopt;
  return session.idle_minutes;
}

double SeedRatio(const SeedCounters& c) {
  const int64_t base = c.downloaded > 0 ? c.downloaded : c.size_when_done;
  if (base <= 0) return 0;
  return static_cast<double>(c.uploaded) / static_cast<double>(base);
}

SeedStop CheckSeedLimits(const SessionSeedLimits& session, const TorrentSeedLimits& torrent,
                         const SeedCounters& c) {
  if (const std::optional<double> limit = EffectiveRatioLimit(session, torrent);
      limit && SeedRatio(c) >= *limit) {
    return SeedStop::kRatioReached;
  }
  if (const std::optional<int64_t> minutes = EffectiveIdleMinutes(session, torrent);
      minutes && *minutes > 0 && c.idle_ms >= *minutes * 60'000) {
    return SeedStop::kIdleReached;
  }
  return SeedStop::kKeepSeeding;
}

}  // namespace torrenty::engine
