// Chunked pool hashing (TorrentConfig::hash_chunk_bytes, PieceAssembly): a big piece's received
// prefix goes to the hash pool a chunk at a time while the piece arrives (kHashChunk), one chunk
// of a piece out at a time, in order, and the rest with kHashPiece continuing the state. The
// verdict must be the whole buffer's, a bad piece must fail and ban as before, and a piece whose
// chunk is out keeps its buffer untouched until the chunk is back, whatever happens meanwhile.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/codec/wire.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/hand_seeder.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using ::torrenty::testing::Swarm;

constexpr PeerAddress kSeeder{0x0A000001, 6881};
constexpr uint32_t kChunk = 256 * 1024;

using Block = ::torrenty::testing::HandBlock;
using ::torrenty::testing::HandSeeder;

// One leecher Torrent with chunked hashing and one hand-driven seeder. Chunk jobs are completed
// `chunk_rounds` rounds after they were emitted (a pool that takes a while), so blocks keep
// arriving while a chunk is out; every chunk's bytes are checked unchanged when it completes.
class Harness {
 public:
  Harness(int64_t piece_length, uint32_t pieces) : seeder_(piece_length, pieces) {
    TorrentConfig cfg;
    cfg.self_id[0] = 1;
    cfg.hash_on_arrival = false;
    cfg.hash_chunk_bytes = kChunk;
    torrent_ = std::make_unique<Torrent>(meta(), cfg);
  }

  std::function<bool(const Block&)> corrupt = [](const Block&) { return false; };
  // Called for each chunk as it is emitted; may act on the torrent (e.g. a remote have).
  std::function<void(Torrent&, const Action&)> on_chunk = [](Torrent&, const Action&) {};

  int chunk_rounds = 1;
  int chunks = 0, hashes = 0, pieces_written = 0;
  int max_out_per_piece = 0;
  bool complete = false;
  std::map<uint32_t, uint32_t> hashed_to;  // per piece: bytes covered by chunks so far
  std::vector<uint32_t> hashed_pieces;     // kHashPiece in order

  Torrent& torrent() { return *torrent_; }
  const Metainfo& meta() const { return seeder_.meta(); }

  void Run(int rounds = 100000) {
    std::vector<uint8_t> in = seeder_.Opening();
    torrent_->HandlePeerConnected(1, kSeeder, /*outgoing=*/true, now_);
    bool handshake_skipped = false;
    for (int round = 0; round < rounds && !complete && !closed_; ++round) {
      // Chunks emitted last round complete now, before this round's blocks.
      round_ = round;
      std::vector<Job> due;
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        if (it->due > round) {
          ++it;
          continue;
        }
        due.push_back(std::move(*it));
        it = jobs_.erase(it);
      }
      for (Job& j : due) {
        EXPECT_TRUE(std::equal(j.chunk.begin(), j.chunk.end(), j.copy.begin(), j.copy.end()))
            << "piece " << j.piece << ": chunk bytes changed while out";
        j.state.Update(j.chunk);
        --out_[j.piece];
        torrent_->HandleHashChunk(j.piece, std::move(j.state), now_);
      }
      Actions();
      // Only part of what is buffered goes in per round, so chunks are out while blocks arrive.
      if (!in.empty()) {
        const size_t n = std::min<size_t>(in.size(), 8 * (kBlockSize + wire::kPieceHeaderSize));
        const size_t used = torrent_->HandleBytes(1, absl::MakeConstSpan(in).first(n), now_);
        in.erase(in.begin(), in.begin() + static_cast<ptrdiff_t>(used));
      }
      Actions();
      for (;;) {
        absl::Span<const uint8_t> out = torrent_->NextSend(1);
        if (out.empty()) break;
        const size_t n = out.size();
        if (!handshake_skipped) out = out.subspan(wire::kHandshakeSize);
        handshake_skipped = true;
        Requests(out, &in);
        torrent_->HandleSent(1, n, now_);
      }
      if (in.empty() && jobs_.empty()) break;
    }
  }

 private:
  struct Job {
    uint32_t piece;
    absl::Span<const uint8_t> chunk;
    std::vector<uint8_t> copy;
    Sha1Hasher state;
    int due = 0;
  };

  // Answers every request at once, in the order asked.
  void Requests(absl::Span<const uint8_t> out, std::vector<uint8_t>* in) {
    std::vector<Block> asked;
    HandSeeder::Requests(out, &asked);
    for (const Block& b : asked) seeder_.Answer(b, corrupt(b), in);
  }

  void Actions() {
    for (;;) {
      torrent_->TakeActions(&pending_);
      if (pending_.empty()) return;
      std::vector<Action> batch;
      batch.swap(pending_);
      for (Action& a : batch) {
        if (a.type == Action::Type::kHashChunk) {
          ++chunks;
          // In order: each chunk starts where the piece's hashed bytes end.
          EXPECT_EQ(a.begin, hashed_to[a.piece]) << "piece " << a.piece;
          EXPECT_EQ(a.chunk.size(), a.length);
          EXPECT_GE(a.length, kChunk);
          hashed_to[a.piece] = a.begin + a.length;
          max_out_per_piece = std::max(max_out_per_piece, ++out_[a.piece]);
          on_chunk(*torrent_, a);
          jobs_.push_back(Job{a.piece,
                              a.chunk,
                              {a.chunk.begin(), a.chunk.end()},
                              std::move(a.hasher),
                              round_ + chunk_rounds});
        } else if (a.type == Action::Type::kHashPiece) {
          ++hashes;
          hashed_pieces.push_back(a.piece);
          EXPECT_EQ(out_[a.piece], 0) << "piece " << a.piece << " hashed with a chunk out";
          EXPECT_EQ(a.begin, hashed_to[a.piece]) << "piece " << a.piece;
          const bool real = Sha1(a.buffer.bytes()) == meta().piece_hashes[a.piece];
          // As the pool does: continue the chunks' state over the rest.
          a.hasher.Update(a.buffer.bytes().subspan(a.begin));
          const bool ok = a.hasher.Finish() == meta().piece_hashes[a.piece];
          EXPECT_EQ(ok, real) << "piece " << a.piece << ": chunked hash disagrees with buffer";
          hashed_to[a.piece] = 0;  // a failed piece starts over
          torrent_->HandleHashResult(a.piece, ok, std::move(a.buffer), now_);
        } else if (a.type == Action::Type::kWritePiece) {
          ++pieces_written;
          torrent_->HandlePieceWritten(a.piece, absl::OkStatus(), std::move(a.buffer), now_);
        } else if (a.type == Action::Type::kComplete) {
          complete = true;
        } else if (a.type == Action::Type::kClose && a.peer == 1) {
          closed_ = true;
        }
      }
    }
  }

  HandSeeder seeder_;
  std::unique_ptr<Torrent> torrent_;
  std::vector<Action> pending_;
  std::vector<Job> jobs_;
  std::map<uint32_t, int> out_;  // chunks out per piece
  Instant now_{1};
  int round_ = 0;
  bool closed_ = false;
};

TEST(HashChunkTest, ChunksGoOutInOrderOneAtATimeAndTheVerdictIsTheBuffers) {
  Harness h(2 * 1024 * 1024, 5);  // 2 MiB pieces, 256 KiB chunks
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.pieces_written, 5);
  EXPECT_EQ(h.hashes, 5);
  EXPECT_EQ(h.max_out_per_piece, 1);
  // Most of each piece went out in chunks: at least 2 MiB / 256 KiB / 2 per full piece.
  EXPECT_GE(h.chunks, 4 * 4);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 0u);
}

TEST(HashChunkTest, PiecesNoLongerThanAChunkAreHashedWhole) {
  Harness h(kChunk, 6);
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.chunks, 0);
  EXPECT_EQ(h.hashes, 6);
}

TEST(HashChunkTest, CorruptBlockInAChunkFailsThePieceAndBansItsOnlySender) {
  Harness h(2 * 1024 * 1024, 4);
  h.corrupt = [](const Block& b) { return b.piece == 1 && b.begin == 3 * kBlockSize; };
  h.Run();
  EXPECT_GT(h.chunks, 0);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 1u);
  EXPECT_TRUE(h.torrent().IsBanned(kSeeder));
}

TEST(HashChunkTest, RemoteHaveWhileAChunkIsOutWaitsForTheChunk) {
  Harness h(2 * 1024 * 1024, 4);
  // Another shard finishes piece 0 while our first chunk of it is on the pool: our copy must not
  // be dropped (its buffer recycled and refilled) until the chunk is back, and then never hashed.
  bool told = false;
  h.chunk_rounds = 40;  // long enough for other pieces' blocks to arrive meanwhile
  h.on_chunk = [&](Torrent& t, const Action& a) {
    if (a.piece == 0 && !told) {
      told = true;
      t.HandleRemoteHave(0, Instant{1});
    }
  };
  h.Run();
  ASSERT_TRUE(told);
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(std::count(h.hashed_pieces.begin(), h.hashed_pieces.end(), 0u), 0);
  EXPECT_EQ(h.pieces_written, 3);
  EXPECT_EQ(h.max_out_per_piece, 1);
}

// ---------------------------------------------------------------------------------------------
// The same through the swarm simulation, which completes hash jobs in random order and checks
// that chunk bytes stay unchanged while out and that the chained state agrees with the buffer.

TorrentConfig ChunkedConfig() {
  TorrentConfig c;
  c.hash_on_arrival = false;
  c.hash_chunk_bytes = kBlockSize;  // every block a chunk: the most chunk traffic
  return c;
}

void ExpectDiskIsPayload(Swarm& sim, int client, const std::vector<uint8_t>& payload) {
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), sim.client(client).disk.begin()));
}

TEST(HashChunkSimTest, SmartBanStillJudgesARacingCorruptPeer) {
  for (uint64_t seed = 1300; seed < 1303; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> payload = torrenty::testing::RandomBytes(rng, 16 * 64 * 1024);
    const Metainfo meta = torrenty::testing::MakeMetainfo(payload, 64 * 1024);
    Swarm sim(meta, payload, {.seed = seed});
    const int good = sim.AddClient(true);
    const int evil = sim.AddClient(true);
    // The evil seeder corrupts one block of every piece it serves.
    sim.client(evil).serve_policy = [](uint32_t, uint32_t begin) {
      return begin == kBlockSize ? Swarm::Client::Serve::kCorrupt : Swarm::Client::Serve::kServe;
    };
    sim.client(good).upload_per_step = 32 * 1024;
    sim.client(evil).upload_per_step = 32 * 1024;
    const int l = sim.AddClient(false, ChunkedConfig());
    sim.Introduce(l, good);
    sim.Introduce(l, evil);
    ASSERT_TRUE(sim.RunUntil([&] { return sim.client(l).completed; }, 60'000));
    ExpectDiskIsPayload(sim, l, payload);
    EXPECT_GT(sim.client(l).hash_chunks, 0);
    EXPECT_GT(sim.torrent(l).stats().pieces_failed, 0u) << "the attack did not happen";
    EXPECT_TRUE(sim.torrent(l).IsBanned(sim.client(evil).address));
    EXPECT_FALSE(sim.torrent(l).IsBanned(sim.client(good).address));
  }
}

TEST(HashChunkSimTest, TwoShardsWithEndgameStealsAndRemoteHaves) {
  for (uint64_t seed = 1200; seed < 1204; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> payload = torrenty::testing::RandomBytes(rng, 24 * 64 * 1024 - 777);
    const Metainfo meta = torrenty::testing::MakeMetainfo(payload, 64 * 1024);
    Swarm sim(meta, payload, {.seed = seed, .random_splits = true});
    const int s1 = sim.AddClient(true);
    const int s2 = sim.AddClient(true);
    sim.client(s1).upload_per_step = 48 * 1024;
    sim.client(s2).upload_per_step = 48 * 1024;
    const int a = sim.AddClient(false, ChunkedConfig());
    const int b = sim.AddShard(a, ChunkedConfig());
    sim.Introduce(a, s1);
    sim.Introduce(b, s2);
    ASSERT_TRUE(
        sim.RunUntil([&] { return sim.client(a).completed && sim.client(b).completed; }, 120'000));
    EXPECT_GT(sim.client(a).hash_chunks + sim.client(b).hash_chunks, 0);
    for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
      ASSERT_GE(sim.client(a).writes[p] + sim.client(b).writes[p], 1) << "piece " << p;
    }
    EXPECT_TRUE(sim.client(a).fatals.empty());
    EXPECT_TRUE(sim.client(b).fatals.empty());
  }
}

TEST(HashChunkSimTest, PadBlocksJoinTheChunks) {
  // 64 KiB pieces, every block a chunk: a piece that starts with pad, one that ends with it, and
  // one that is all pad (never requested, hashed whole at once).
  constexpr int64_t kPiece = 64 * 1024;
  const std::vector<std::pair<int64_t, bool>> files = {{40'000, false},
                                                       {2 * kPiece - 40'000, true},
                                                       {100'000, false},
                                                       {4 * kPiece - 2 * kPiece - 100'000, true},
                                                       {5'000, false}};
  int64_t total = 0;
  std::vector<std::pair<int64_t, int64_t>> pads;
  for (auto [len, pad] : files) {
    if (pad) pads.emplace_back(total, total + len);
    total += len;
  }
  for (uint64_t seed = 1400; seed < 1403; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> payload = torrenty::testing::RandomBytes(rng, static_cast<size_t>(total));
    for (auto [from, to] : pads) std::fill(payload.begin() + from, payload.begin() + to, 0);
    const Metainfo meta = torrenty::testing::MakeMetainfoWithFiles(payload, kPiece, files);
    Swarm sim(meta, payload, {.seed = seed, .random_splits = true});
    const int s = sim.AddClient(true);
    const int l = sim.AddClient(false, ChunkedConfig());
    sim.Introduce(l, s);
    ASSERT_TRUE(sim.RunUntil([&] { return sim.client(l).completed; }, 60'000));
    ExpectDiskIsPayload(sim, l, payload);
    EXPECT_GT(sim.client(l).hash_chunks, 0);
    EXPECT_EQ(sim.torrent(l).stats().pieces_failed, 0u);
  }
}

}  // namespace
}  // namespace torrenty::engine
