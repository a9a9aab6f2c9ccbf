#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

const char* CloseReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::kNone:
      return "none";
    case CloseReason::kProtocolError:
      return "protocol error";
    case CloseReason::kWrongInfoHash:
      return "wrong info-hash";
    case CloseReason::kSelfConnection:
      return "connection to self";
    case CloseReason::kDuplicate:
      return "duplicate connection";
    case CloseReason::kTimeout:
      return "timeout";
    case CloseReason::kBothSeeds:
      return "both seeds";
    case CloseReason::kPeerClosed:
      return "peer closed";
    case CloseReason::kBanned:
      return "banned";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "?";
}

}  // namespace torrenty::engine
