#include "engine/session/torrent_queue.h"

#include <algorithm>

namespace torrenty::engine {

bool QueueStalled(const QueueLimits& limits, int64_t idle_ms) {
  return limits.stalled_enabled && idle_ms >= limits.stalled_minutes * 60'000;
}

bool QueueHasRoom(const QueueLimits& limits, QueueKind kind, int active) {
  if (kind == QueueKind::kDownload)
    return !limits.download_enabled || active < limits.download_size;
  return !limits.seed_enabled || active < limits.seed_size;
}

std::vector<uint32_t> TorrentsToStart(const QueueLimits& limits, std::span<const QueueSlot> queue) {
  int active[2] = {0, 0};
  for (const QueueSlot& s : queue) {
    if (s.active) ++active[static_cast<int>(s.kind)];
  }
  std::vector<uint32_t> out;
  for (const QueueSlot& s : queue) {
    if (!s.waiting) continue;
    int& n = active[static_cast<int>(s.kind)];
    if (!QueueHasRoom(limits, s.kind, n)) continue;
    ++n;
    out.push_back(s.id);
  }
  return out;
}

void SetQueuePosition(std::vector<uint32_t>* order, uint32_t id, size_t position) {
  auto it = std::find(order->begin(), order->end(), id);
  if (it == order->end()) return;
  order->erase(it);
  position = std::min(position, order->size());
  order->insert(order->begin() + static_cast<std::ptrdiff_t>(position), id);
}

}  // namespace torrenty::engine
