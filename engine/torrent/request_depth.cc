#include "engine/torrent/request_depth.h"

#include <algorithm>

namespace torrenty::engine {

RequestDepth::RequestDepth(Config config)
    : config_(config), depth_(std::clamp(config.initial, config.min, config.max)) {}

void RequestDepth::OnBlock(uint32_t bytes, Instant now) {
  // A gap of several windows means nothing was asked (choked, or nothing to ask for), not a
  // slow peer: the measurement starts over instead of shrinking the depth.
  if (window_open_ && now.ms - last_block_.ms > 4 * config_.window_ms) window_open_ = false;
  last_block_ = now;
  if (!window_open_) {
    window_open_ = true;
    window_start_ = now;
    window_bytes_ = 0;
  }
  window_bytes_ += bytes;
  if (slow_start_ && depth_ < config_.max) ++depth_;
  const int64_t elapsed = now.ms - window_start_.ms;
  if (elapsed < config_.window_ms) return;
  const int64_t rate = window_bytes_ * 1000 / elapsed;
  // Slow start ends when a window is not at least an eighth faster than the one before.
  if (slow_start_ && rate_ > 0 && rate < rate_ + rate_ / 8) slow_start_ = false;
  rate_ = rate;
  window_start_ = now;
  window_bytes_ = 0;
  if (slow_start_) return;
  const int64_t target = (rate * config_.queue_ms / 1000 + kBlockSize - 1) / kBlockSize;
  depth_ = static_cast<uint32_t>(std::clamp<int64_t>(target, config_.min, config_.max));
}

}  // namespace torrenty::engine
