// Hashing a piece's blocks as they arrive (TorrentConfig::hash_on_arrival, PieceAssembly): the
// verdict kHashPiece carries must be the whole buffer's, whatever order, duplicates or corruption
// the blocks came with, and a bad piece must lead to the same failure and ban as before.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/codec/wire.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/hand_seeder.h"

namespace torrenty::engine {
namespace {

constexpr PeerAddress kSeeder{0x0A000001, 6881};

using Block = ::torrenty::testing::HandBlock;
using ::torrenty::testing::HandSeeder;

// One leecher Torrent and one hand-driven seeder that answers the leecher's requests in the
// order `order` puts them, sending `corrupt` blocks with a flipped byte and `repeat` blocks twice.
class Harness {
 public:
  Harness(int64_t piece_length, uint32_t pieces, bool hash_on_arrival = true)
      : seeder_(piece_length, pieces) {
    TorrentConfig cfg;
    cfg.self_id[0] = 1;
    cfg.hash_on_arrival = hash_on_arrival;
    torrent_ = std::make_unique<Torrent>(meta(), cfg);
  }

  std::function<void(std::vector<Block>&)> order = [](std::vector<Block>&) {};
  std::function<bool(const Block&)> corrupt = [](const Block&) { return false; };
  std::function<bool(const Block&)> repeat = [](const Block&) { return false; };

  int verdicts_matched = 0, verdicts_mismatched = 0, verdicts_unknown = 0;
  int pieces_written = 0;
  bool complete = false;

  const Torrent& torrent() const { return *torrent_; }
  const Metainfo& meta() const { return seeder_.meta(); }

  // Runs until the download completes, the seeder is closed, or `rounds` rounds pass.
  void Run(int rounds = 100000) {
    std::vector<uint8_t> in = seeder_.Opening();
    torrent_->HandlePeerConnected(1, kSeeder, /*outgoing=*/true, now_);
    bool handshake_skipped = false;
    for (int round = 0; round < rounds && !complete && !closed_; ++round) {
      if (!in.empty()) {
        const size_t used = torrent_->HandleBytes(1, in, now_);
        in.erase(in.begin(), in.begin() + static_cast<ptrdiff_t>(used));
      }
      Actions();
      std::vector<Block> asked;
      for (;;) {
        absl::Span<const uint8_t> out = torrent_->NextSend(1);
        if (out.empty()) break;
        const size_t n = out.size();
        if (!handshake_skipped) out = out.subspan(wire::kHandshakeSize);
        handshake_skipped = true;
        HandSeeder::Requests(out, &asked);
        torrent_->HandleSent(1, n, now_);
      }
      order(asked);
      for (const Block& b : asked) {
        seeder_.Answer(b, corrupt(b), &in);
        if (repeat(b)) seeder_.Answer(b, corrupt(b), &in);
      }
      if (in.empty() && asked.empty() && pending_.empty()) break;
    }
  }

 private:
  // Hashes and writes complete at once, as a fast pool and disk would.
  void Actions() {
    for (;;) {
      torrent_->TakeActions(&pending_);
      if (pending_.empty()) return;
      std::vector<Action> batch;
      batch.swap(pending_);
      for (Action& a : batch) {
        if (a.type == Action::Type::kHashPiece) {
          const bool real = Sha1(a.buffer.bytes()) == meta().piece_hashes[a.piece];
          bool ok = real;
          switch (a.verdict) {
            case Action::Verdict::kMatched:
              ++verdicts_matched;
              EXPECT_TRUE(real) << "piece " << a.piece << ": matched, but the buffer is bad";
              ok = true;
              break;
            case Action::Verdict::kMismatched:
              ++verdicts_mismatched;
              EXPECT_FALSE(real) << "piece " << a.piece << ": mismatched, but the buffer is good";
              ok = false;
              break;
            case Action::Verdict::kUnknown:
              ++verdicts_unknown;
              break;
          }
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
  Instant now_{1};
  bool closed_ = false;
};

TEST(HashOnArrivalTest, InOrderBlocksAreHashedAsTheyArrive) {
  Harness h(256 * 1024, 9);
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.verdicts_matched, 9);
  EXPECT_EQ(h.verdicts_unknown, 0);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 0u);
}

TEST(HashOnArrivalTest, OutOfOrderBlocksWaitForThePrefix) {
  Harness h(64 * 1024, 20);
  // Every batch of requests answered back to front: each piece's first block comes last.
  h.order = [](std::vector<Block>& b) { std::reverse(b.begin(), b.end()); };
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.verdicts_matched, 20);
  EXPECT_EQ(h.verdicts_unknown, 0);
}

TEST(HashOnArrivalTest, PrefixTooFarBehindFallsBackToThePool) {
  // 2 MiB pieces, 128 blocks: each piece's first block held back until all others were sent,
  // so the prefix has far more than one catch-up to make up and the piece goes to the pool
  // whole.
  Harness h(2 * 1024 * 1024, 3);
  std::vector<Block> held;
  h.order = [&](std::vector<Block>& asked) {
    std::vector<Block> out;
    for (const Block& b : asked) (b.begin == 0 ? held : out).push_back(b);
    for (auto it = held.begin(); it != held.end();) {
      const bool more = std::any_of(asked.begin(), asked.end(), [&](const Block& b) {
        return b.piece == it->piece && b.begin != 0;
      });
      if (more) {
        ++it;
        continue;
      }
      out.push_back(*it);
      it = held.erase(it);
    }
    asked = std::move(out);
  };
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.verdicts_unknown, 3);
  EXPECT_EQ(h.pieces_written, 3);
}

TEST(HashOnArrivalTest, DuplicateBlocksDoNotEnterTheHash) {
  Harness h(64 * 1024, 12);
  // Every block twice, the second copy corrupt: it is wasted and never hashed.
  bool second = false;
  h.repeat = [&](const Block&) { return true; };
  h.corrupt = [&](const Block&) {
    second = !second;
    return !second;
  };
  h.Run();
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(h.verdicts_matched, 12);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 0u);
  EXPECT_GT(h.torrent().stats().wasted_bytes, 0);
}

TEST(HashOnArrivalTest, CorruptBlockFailsThePieceAndBansItsOnlySender) {
  Harness h(64 * 1024, 12);
  h.corrupt = [](const Block& b) { return b.piece == 3 && b.begin == 2 * kBlockSize; };
  h.Run();
  EXPECT_EQ(h.verdicts_mismatched, 1);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 1u);
  EXPECT_TRUE(h.torrent().IsBanned(kSeeder));
}

TEST(HashOnArrivalTest, SameOutcomeWithHashingOnThePool) {
  Harness h(64 * 1024, 12, /*hash_on_arrival=*/false);
  h.corrupt = [](const Block& b) { return b.piece == 3 && b.begin == 2 * kBlockSize; };
  h.Run();
  EXPECT_GT(h.verdicts_unknown, 0);
  EXPECT_EQ(h.verdicts_matched + h.verdicts_mismatched, 0);
  EXPECT_EQ(h.torrent().stats().pieces_failed, 1u);
  EXPECT_TRUE(h.torrent().IsBanned(kSeeder));
}

}  // namespace
}  // namespace torrenty::engine
