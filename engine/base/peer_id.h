// Peer ids (BEP 20): ours, and the client another one names.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/types.h"

namespace torrenty::engine {

// "-TY0001-" then twelve digits drawn from `random` (the caller's entropy: engine/ has none).
PeerId MakePeerId(uint64_t random_a, uint64_t random_b);

// The client a peer id names, for verbose output: Azureus-style ids ("-qB4450-") as the
// client's name and version, aria2's "A2-1-36-0-" as aria2, anything else as "".
std::string ClientName(const PeerId& id);

}  // namespace torrenty::engine
