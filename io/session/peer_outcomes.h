// Why there are no peers: what last became of each dialled address, summed up in one line
// ("no peer reachable: 2 refused, 1 timed out") when none is connected and every one has failed.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "engine/base/types.h"
#include "engine/torrent/torrent.h"

namespace torrenty::io {

enum class PeerOutcome : uint32_t {
  kConnected,
  kFine,  // closed for a reason that is no failure (both seeds, duplicate connection)
  kRefused,
  kTimeout,
  kUnreachable,
  kBadHandshake,
  kClosedBeforeHandshake,
  kClosedAfterHandshake,
  kProtocolError,
  kBanned,
};

const char* PeerOutcomeName(PeerOutcome o);
// The outcome a close by the engine stands for.
PeerOutcome CloseOutcome(engine::CloseReason reason);

class PeerOutcomes {
 public:
  void Record(engine::PeerAddress address, PeerOutcome outcome);
  // The line to print now, or "" when nothing changed since the last one or a peer is fine.
  std::string UnreachableLine(uint32_t peers_connected);

 private:
  absl::flat_hash_map<engine::PeerAddress, PeerOutcome> outcomes_;
  std::string last_line_;
};

}  // namespace torrenty::io
