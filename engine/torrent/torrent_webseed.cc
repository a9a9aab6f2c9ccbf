// engine::Torrent's side of web seeds: pieces fetched whole over HTTP (engine/webseed) take the
// same claims, budgeted buffers, hash check and write as pieces from peers.
#include "engine/torrent/torrent.h"

namespace torrenty::engine {

bool Torrent::WebSeedFetchable(uint32_t piece) const {
  return piece < num_pieces_ && !have_.Get(piece) && wanted_.Get(piece) &&
         assembly_.ClaimState(piece) == PieceClaims::State::kFree;
}

bool Torrent::StartWebSeedPiece(uint32_t piece) {
  return WebSeedFetchable(piece) && assembly_.StartWebPiece(piece);
}

void Torrent::HandleWebSeedData(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data) {
  if (!assembly_.AcceptWebData(piece, begin, data)) {
    stats_.wasted_bytes += static_cast<int64_t>(data.size());
  }
}

void Torrent::CancelWebSeedPiece(uint32_t piece) {
  assembly_.CancelWebPiece(piece);
  // The piece may now go to a peer that has it.
  for (auto& [key, peer] : peers_) FillRequests(*peer);
}

}  // namespace torrenty::engine
