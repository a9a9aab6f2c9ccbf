#include "engine/torrent/choker.h"

#include <algorithm>

namespace torrenty::engine {

Choker::Choker(ChokerConfig config, uint64_t seed) : config_(config), rng_(std::seed_seq{seed}) {}

std::vector<uint32_t> Choker::Run(absl::Span<const ChokerPeer> peers, bool seeding, Instant now) {
  ran_ = true;
  last_round_ = now;
  std::vector<const ChokerPeer*> candidates;
  for (const ChokerPeer& p : peers) {
    if (p.interested && !p.snubbed) candidates.push_back(&p);
  }
  auto rate = [seeding](const ChokerPeer* p) {
    return seeding ? p->upload_rate : p->download_rate;
  };
  // Stable on key so equal rates do not reshuffle the set every round.
  std::sort(candidates.begin(), candidates.end(), [&](const ChokerPeer* a, const ChokerPeer* b) {
    if (rate(a) != rate(b)) return rate(a) > rate(b);
    return a->key < b->key;
  });
  std::vector<uint32_t> unchoke;
  for (const ChokerPeer* p : candidates) {
    if (unchoke.size() >= config_.regular_slots) break;
    unchoke.push_back(p->key);
  }

  // The optimistic slot rotates every optimistic_ms among interested peers left choked; it
  // stays with its peer between rotations unless that peer leaves or loses interest.
  bool keep = false;
  if (has_optimistic_ && now.ms - last_optimistic_.ms < config_.optimistic_ms) {
    for (const ChokerPeer& p : peers) {
      if (p.key == optimistic_ && p.interested) keep = true;
    }
  }
  if (!keep) {
    std::vector<uint32_t> waiting;
    for (const ChokerPeer& p : peers) {
      if (p.interested && std::find(unchoke.begin(), unchoke.end(), p.key) == unchoke.end()) {
        waiting.push_back(p.key);
      }
    }
    // Rotate: the outgoing optimistic peer only gets the slot again if nobody else waits.
    if (has_optimistic_ && waiting.size() > 1) {
      waiting.erase(std::remove(waiting.begin(), waiting.end(), optimistic_), waiting.end());
    }
    has_optimistic_ = !waiting.empty();
    if (has_optimistic_) {
      optimistic_ = waiting[absl::Uniform<size_t>(rng_, 0, waiting.size())];
      last_optimistic_ = now;
    }
  }
  if (has_optimistic_ && std::find(unchoke.begin(), unchoke.end(), optimistic_) == unchoke.end()) {
    unchoke.push_back(optimistic_);
  }
  return unchoke;
}

}  // namespace torrenty::engine
