// HTTP(S) tracker protocol (BEP 3, BEP 23 compact peers): building announce URLs and parsing
// announce responses. Pure functions; io/http_fetcher.h performs the actual GET.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"

namespace torrenty::engine {

// A tracker may list any number of peers; we never need more than this from one response and
// refuse to allocate for more (the rest are ignored).
inline constexpr size_t kMaxPeersPerAnnounce = 10'000;
// Failure/warning text is only logged; a hostile tracker must not make us keep megabytes of it.
inline constexpr size_t kMaxTrackerMessageBytes = 1024;

enum class AnnounceEvent { kNone, kStarted, kCompleted, kStopped };

// The value of the `event` query parameter, or "" for kNone.
std::string_view AnnounceEventName(AnnounceEvent event);

struct AnnounceParams {
  InfoHash info_hash{};
  PeerId peer_id{};
  uint16_t port = 0;
  int64_t uploaded = 0;
  int64_t downloaded = 0;
  int64_t left = 0;
  int numwant = 200;
  AnnounceEvent event = AnnounceEvent::kNone;
  std::string tracker_id;
};

// True if `url` starts with http:// or https:// (case-insensitive scheme).
bool IsHttpTrackerUrl(std::string_view url);

// Appends the announce query (info_hash and peer_id percent-encoded byte by byte, port,
// uploaded, downloaded, left, compact=1, numwant, event if any, trackerid if any) to
// `announce_url`, joining with '&' when the URL already has a query. Any #fragment is dropped.
// Errors for non-http(s) URLs and URLs with no host.
[[nodiscard]] absl::StatusOr<std::string> BuildAnnounceUrl(std::string_view announce_url,
                                                           const AnnounceParams& params);

struct AnnounceResponse {
  // Non-empty when the tracker refused the announce; the other fields are then unset.
  std::string failure_reason;
  std::string warning_message;
  // Seconds, as sent by the tracker (0 = not sent). The scheduler clamps them.
  int64_t interval = 0;
  int64_t min_interval = 0;
  std::string tracker_id;
  // Seeders / leechers, -1 when the tracker did not say.
  int64_t complete = -1;
  int64_t incomplete = -1;
  std::vector<PeerAddress> peers;
};

// Parses a tracker's bencoded response body. Accepts compact peers (a string of 6-byte
// entries), BEP 7 compact `peers6` (18-byte entries, added to `peers`) and dictionary peers (a list
// of dicts with a dotted-IPv4 "ip" and a "port"; entries that are not IPv4 or have port 0 are
// skipped). A "failure reason" yields a response with failure_reason set, not an error. Errors for
// bodies that are not a bencoded dict, for a compact list whose length is not a multiple of 6, and
// for fields of the wrong type.
[[nodiscard]] absl::StatusOr<AnnounceResponse> ParseAnnounceResponse(std::string_view body);

}  // namespace torrenty::engine
