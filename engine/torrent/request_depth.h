// How many block requests to keep outstanding with one peer. A fixed depth asks a slow peer for
// megabytes it cannot deliver for seconds; in a fleet fed by one origin, those blocks are stuck
// behind every other host's queue while the same pieces spread among the hosts, and the origin
// ends up sending them more than once. So the depth follows what the peer delivers: about
// `queue_ms` of its measured rate (libtorrent's request_queue_time), grown from a small start by
// one request per block received (TCP's slow start: doubling per round trip) until the rate
// stops rising.
#pragma once

#include <cstdint>

#include "engine/base/types.h"

namespace torrenty::engine {

class RequestDepth {
 public:
  struct Config {
    uint32_t initial = 32;
    uint32_t min = 4;
    uint32_t max = 128;
    // Outstanding requests cover this much of the peer's rate; it must exceed the round trip.
    int64_t queue_ms = 1000;
    // The rate is measured over windows at least this long.
    int64_t window_ms = 500;
  };

  RequestDepth() : RequestDepth(Config{}) {}
  explicit RequestDepth(Config config);

  // A block of `bytes` arrived from the peer at `now`.
  void OnBlock(uint32_t bytes, Instant now);
  uint32_t depth() const { return depth_; }
  bool slow_start() const { return slow_start_; }
  // Bytes per second over the last whole window (0 before one has passed).
  int64_t rate() const { return rate_; }

 private:
  Config config_;
  uint32_t depth_;
  bool slow_start_ = true;
  bool window_open_ = false;
  Instant window_start_{};
  Instant last_block_{};
  int64_t window_bytes_ = 0;
  int64_t rate_ = 0;
};

}  // namespace torrenty::engine
