// BEP 3 choking: every round, unchoke the peers that reciprocate best, plus one optimistic
// unchoke that rotates so new peers get a chance to prove themselves. Pure: rates and time come
// in as arguments; the result says who should be unchoked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/random/random.h"
#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine {

struct ChokerPeer {
  uint32_t key = 0;
  bool interested = false;   // the peer wants data from us
  bool snubbed = false;      // it holds our requests and sends nothing
  double download_rate = 0;  // bytes/s it sent us over the last round
  double upload_rate = 0;    // bytes/s we sent it over the last round
};

struct ChokerConfig {
  // BEP 3 and libtorrent's default: four reciprocating slots (0 leaves only the optimistic one).
  uint32_t regular_slots = 4;
  int64_t round_ms = 10'000;
  int64_t optimistic_ms = 30'000;
};

class Choker {
 public:
  Choker(ChokerConfig config, uint64_t seed);

  // True when a new round is due, or the optimistic slot is up for rotation.
  bool Due(Instant now) const {
    return !ran_ || now.ms - last_round_.ms >= config_.round_ms ||
           (has_optimistic_ && now.ms - last_optimistic_.ms >= config_.optimistic_ms);
  }

  // Decides the unchoked set for the next round. Leeching, the best uploaders to us win (tit for
  // tat); seeding, the peers we upload to fastest win (they finish and spread the data sooner).
  // Snubbed peers are never reciprocated, only optimistically unchoked. Returns the keys to have
  // unchoked, the optimistic one included.
  std::vector<uint32_t> Run(absl::Span<const ChokerPeer> peers, bool seeding, Instant now);
  // The earliest time Due() becomes true (in the past before the first round).
  Instant NextDue() const {
    if (!ran_) return Instant{INT64_MIN / 2};
    int64_t due = last_round_.ms + config_.round_ms;
    if (has_optimistic_) due = std::min(due, last_optimistic_.ms + config_.optimistic_ms);
    return Instant{due};
  }

  uint32_t optimistic() const { return optimistic_; }
  uint32_t slots_total() const { return config_.regular_slots + 1; }

 private:
  ChokerConfig config_;
  absl::BitGen rng_;
  bool ran_ = false;
  Instant last_round_{};
  Instant last_optimistic_{};
  uint32_t optimistic_ = 0;
  bool has_optimistic_ = false;
};

}  // namespace torrenty::engine
