// BEP 9 magnet URIs: parsing `magnet:?xt=urn:btih:...&dn=...&tr=...&x.pe=...` into what a download
// needs before it has the metainfo, and writing the link of a torrent we have.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::engine {

// Bounds on what one link may carry, so a hostile link cannot make us hold or dial without end.
inline constexpr size_t kMaxMagnetLength = 64 << 10;
inline constexpr size_t kMaxMagnetTrackers = 64;
inline constexpr size_t kMaxMagnetPeers = 256;

struct MagnetPeer {
  std::string host;  // a name, dotted IPv4, or IPv6 without the brackets
  uint16_t port = 0;
  friend bool operator==(const MagnetPeer&, const MagnetPeer&) = default;
};

struct MagnetLink {
  InfoHash info_hash{};
  std::string name;                   // dn, percent-decoded; may be empty
  std::vector<std::string> trackers;  // tr, in order, duplicates dropped
  std::vector<MagnetPeer> peers;      // x.pe
};

bool IsMagnetUri(absl::string_view text);

// Errors name what is wrong ("magnet: xt is not urn:btih:..."). Unknown parameters are ignored;
// a second btih (another hash) is an error, since the link would name two torrents.
[[nodiscard]] absl::StatusOr<MagnetLink> ParseMagnet(absl::string_view uri);

// "HOST:PORT", "[v6]:PORT"; the port must be 1-65535.
[[nodiscard]] absl::StatusOr<MagnetPeer> ParseMagnetPeer(absl::string_view text);

// magnet:?xt=urn:btih:<40 hex>&dn=<name>&tr=<each tracker>, percent-encoded.
std::string MakeMagnet(const Metainfo& meta);

}  // namespace torrenty::engine
