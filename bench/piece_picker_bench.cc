// Piece picker speed at swarm scale: 10,000 pieces, 200 peers with random bitfields. The
// argument of BM_Pick and BM_PickWithUpdates is the pieces per extent (1: none; 4: 1 MiB pieces),
// and each peer then picks from the extent of its last pick, as PieceAssembly does.
#include <benchmark/benchmark.h>

#include <deque>
#include <random>
#include <vector>

#include "engine/torrent/piece_picker.h"

namespace torrenty::engine {
namespace {

constexpr uint32_t kPieces = 10000;
constexpr int kPeers = 200;

// Each peer gets its own density, from nearly empty to a seed, as in a real swarm.
Bitfield RandomPeer(std::mt19937_64& rng) {
  Bitfield b(kPieces);
  const double density = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  std::bernoulli_distribution has(density);
  for (uint32_t i = 0; i < kPieces; ++i) {
    if (has(rng)) b.Set(i);
  }
  return b;
}

struct Swarm {
  explicit Swarm(uint64_t seed, uint32_t pieces_per_extent = 1)
      : rng(seed),
        picker(kPieces, seed, pieces_per_extent),
        extent(kPeers, PiecePicker::kNoExtent) {
    for (int i = 0; i < kPeers; ++i) {
      peers.push_back(RandomPeer(rng));
      picker.AddPeer(peers.back());
    }
    // We already hold a quarter of the torrent.
    for (uint32_t i = 0; i < kPieces; i += 4) picker.SetWeHave(i);
  }
  std::mt19937_64 rng;
  PiecePicker picker;
  std::vector<Bitfield> peers;
  std::vector<uint32_t> extent;  // per peer: the extent of its last pick
};

// Pick only: the common case of asking what to request from a peer.
void BM_Pick(benchmark::State& state) {
  Swarm s(1, static_cast<uint32_t>(state.range(0)));
  size_t found = 0;
  for (auto _ : state) {
    const size_t k = s.rng() % kPeers;
    std::optional<uint32_t> pick = s.picker.Pick(s.peers[k], s.extent[k]);
    if (pick) s.extent[k] = s.picker.ExtentOf(*pick);
    found += pick.has_value();
    benchmark::DoNotOptimize(pick);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["found"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Pick)->Arg(1)->Arg(4);

// A steady-state download loop: a `have` arrives (and one is forgotten, to keep availability
// bounded), we pick for a peer and mark it in progress, and the oldest of 256 in-progress
// pieces is released. One iteration = one pick plus four availability/state updates.
void BM_PickWithUpdates(benchmark::State& state) {
  Swarm s(2, static_cast<uint32_t>(state.range(0)));
  std::deque<uint32_t> in_progress;
  for (auto _ : state) {
    Bitfield& gains = s.peers[s.rng() % kPeers];
    const auto piece = static_cast<uint32_t>(s.rng() % kPieces);
    if (!gains.Get(piece)) {
      gains.Set(piece);
      s.picker.AddHave(piece);
    }
    Bitfield& loses = s.peers[s.rng() % kPeers];
    const auto lost = static_cast<uint32_t>(s.rng() % kPieces);
    if (loses.Get(lost)) {
      loses.Clear(lost);
      s.picker.RemoveHave(lost);
    }
    const size_t k = s.rng() % kPeers;
    if (std::optional<uint32_t> pick = s.picker.Pick(s.peers[k], s.extent[k])) {
      s.extent[k] = s.picker.ExtentOf(*pick);
      s.picker.SetInProgress(*pick, true);
      in_progress.push_back(*pick);
    }
    if (in_progress.size() > 256) {
      s.picker.SetInProgress(in_progress.front(), false);
      in_progress.pop_front();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PickWithUpdates)->Arg(1)->Arg(4);

// Peer churn: a peer leaves and another with a fresh random bitfield joins.
void BM_PeerChurn(benchmark::State& state) {
  Swarm s(3);
  std::vector<Bitfield> pool;
  for (int i = 0; i < 64; ++i) pool.push_back(RandomPeer(s.rng));
  size_t next = 0;
  for (auto _ : state) {
    const size_t k = s.rng() % kPeers;
    s.picker.RemovePeer(s.peers[k]);
    std::swap(s.peers[k], pool[next++ % pool.size()]);
    s.picker.AddPeer(s.peers[k]);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PeerChurn);

}  // namespace
}  // namespace torrenty::engine
