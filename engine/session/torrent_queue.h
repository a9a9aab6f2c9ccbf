// Transmission's download and seed queues as a pure state machine: a torrent that wants to run
// starts only while its queue (downloading or seeding) has fewer active torrents than its size;
// the waiting ones start in queue order. Torrents started with torrent-start-now run beside the
// queue and take no slot. Running torrents are never preempted: a smaller size or a move takes
// effect as slots free up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace torrenty::engine {

struct QueueLimits {
  bool download_enabled = false;
  int download_size = 5;
  bool seed_enabled = false;
  int seed_size = 10;
  // A download that moved no payload for this long gives its slot to the next in the queue.
  bool stalled_enabled = false;
  int64_t stalled_minutes = 30;
};

enum class QueueKind { kDownload, kSeed };

struct QueueSlot {
  uint32_t id = 0;
  QueueKind kind = QueueKind::kDownload;
  bool active = false;   // running and taking a slot (not forced)
  bool waiting = false;  // wants to run, not running
};

// Whether a running download idle for idle_ms (no payload in or out) has stalled.
bool QueueStalled(const QueueLimits& limits, int64_t idle_ms);

// Whether one more torrent of `kind` may start beside `active` ones.
bool QueueHasRoom(const QueueLimits& limits, QueueKind kind, int active);

// The waiting torrents to start now, given every torrent in queue order.
std::vector<uint32_t> TorrentsToStart(const QueueLimits& limits, std::span<const QueueSlot> queue);

enum class QueueMove { kTop, kUp, kDown, kBottom };

// Moves the torrents of `order` for which selected(id) holds, keeping their relative order
// (rpc-spec queue-move-*): up/down by one place each, top/bottom as a block.
template <typename Selected>
void MoveInQueue(std::vector<uint32_t>* order, QueueMove how, Selected selected);

// Puts `id` at `position` (clamped to the end); the others keep their order.
void SetQueuePosition(std::vector<uint32_t>* order, uint32_t id, size_t position);

// ---------------------------------------------------------------------------------------------

template <typename Selected>
void MoveInQueue(std::vector<uint32_t>* order, QueueMove how, Selected selected) {
  std::vector<uint32_t>& v = *order;
  switch (how) {
    case QueueMove::kUp:
      // Ascending, so a selected block moves up together instead of swapping within itself.
      for (size_t i = 1; i < v.size(); ++i) {
        if (selected(v[i]) && !selected(v[i - 1])) std::swap(v[i], v[i - 1]);
      }
      return;
    case QueueMove::kDown:
      for (size_t i = v.size(); i-- > 1;) {
        if (selected(v[i - 1]) && !selected(v[i])) std::swap(v[i], v[i - 1]);
      }
      return;
    case QueueMove::kTop:
    case QueueMove::kBottom: {
      std::vector<uint32_t> picked, rest;
      for (uint32_t id : v) (selected(id) ? picked : rest).push_back(id);
      if (how == QueueMove::kTop) {
        picked.insert(picked.end(), rest.begin(), rest.end());
        v = std::move(picked);
      } else {
        rest.insert(rest.end(), picked.begin(), picked.end());
        v = std::move(rest);
      }
      return;
    }
  }
}

}  // namespace torrenty::engine
