#include "io/session/peer_outcomes.h"

#include "absl/strings/str_cat.h"

namespace torrenty::io {
namespace {
// Dialled addresses remembered for the "no peer reachable" line.
constexpr size_t kOutcomesMax = 1 << 16;
}  // namespace

const char* PeerOutcomeName(PeerOutcome o) {
  switch (o) {
    case PeerOutcome::kConnected:
      return "connected";
    case PeerOutcome::kFine:
      return "fine";
    case PeerOutcome::kRefused:
      return "refused";
    case PeerOutcome::kTimeout:
      return "timed out";
    case PeerOutcome::kUnreachable:
      return "unreachable";
    case PeerOutcome::kBadHandshake:
      return "bad handshake";
    case PeerOutcome::kClosedBeforeHandshake:
      return "closed before handshake";
    case PeerOutcome::kClosedAfterHandshake:
      return "closed after handshake";
    case PeerOutcome::kProtocolError:
      return "protocol error";
    case PeerOutcome::kBanned:
      return "banned";
  }
  return "?";
}

PeerOutcome CloseOutcome(engine::CloseReason reason) {
  switch (reason) {
    case engine::CloseReason::kWrongInfoHash:
      return PeerOutcome::kBadHandshake;
    case engine::CloseReason::kProtocolError:
      return PeerOutcome::kProtocolError;
    case engine::CloseReason::kTimeout:
      return PeerOutcome::kTimeout;
    case engine::CloseReason::kBanned:
      return PeerOutcome::kBanned;
    case engine::CloseReason::kPeerClosed:
      return PeerOutcome::kClosedAfterHandshake;
    default:
      return PeerOutcome::kFine;
  }
}

void PeerOutcomes::Record(engine::PeerAddress address, PeerOutcome outcome) {
  // Trackers choose how many addresses we dial over a long run: start over rather than grow.
  if (outcomes_.size() >= kOutcomesMax && !outcomes_.contains(address)) outcomes_.clear();
  outcomes_[address] = outcome;
}

std::string PeerOutcomes::UnreachableLine(uint32_t peers_connected) {
  if (peers_connected > 0 || outcomes_.empty()) return "";
  constexpr size_t kOutcomes = static_cast<size_t>(PeerOutcome::kBanned) + 1;
  size_t counts[kOutcomes] = {};
  for (const auto& [address, outcome] : outcomes_) {
    if (outcome == PeerOutcome::kConnected || outcome == PeerOutcome::kFine) return "";
    ++counts[static_cast<size_t>(outcome)];
  }
  std::string line = "no peer reachable:";
  const char* sep = " ";
  for (size_t i = 0; i < kOutcomes; ++i) {
    if (counts[i] == 0) continue;
    absl::StrAppend(&line, sep, counts[i], " ", PeerOutcomeName(static_cast<PeerOutcome>(i)));
    sep = ", ";
  }
  if (line == last_line_) return "";
  last_line_ = line;
  return line;
}

}  // namespace torrenty::io
