// BEP 6 allowed-fast set: the pieces a peer may request while we choke it. The set depends only
// on the peer's IPv4 /24, the info-hash and the piece count, so both sides (and every client) can
// compute the same one and a peer cannot grow it by reconnecting from a neighbouring address.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/base/types.h"

namespace torrenty::engine {

// BEP 6 suggests 10 for small swarms; libtorrent uses the same.
inline constexpr uint32_t kAllowedFastSetSize = 10;

// The canonical set (BEP 6, "Allowed Fast"): min(k, num_pieces) distinct piece indices in the
// order the algorithm yields them. `ipv4` is in host byte order.
std::vector<uint32_t> AllowedFastSet(uint32_t ipv4, const InfoHash& info_hash, uint32_t num_pieces,
                                     uint32_t k = kAllowedFastSetSize);

}  // namespace torrenty::engine
