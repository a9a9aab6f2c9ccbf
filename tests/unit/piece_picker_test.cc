// Tests for rarest-first piece picking, including a randomized cross-check against a
// brute-force model.
#include "engine/torrent/piece_picker.h"

#include <algorithm>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

Bitfield Bits(uint32_t n, std::initializer_list<uint32_t> set) {
  Bitfield b(n);
  for (uint32_t i : set) b.Set(i);
  return b;
}

Bitfield All(uint32_t n) {
  Bitfield b(n);
  b.SetAll();
  return b;
}

TEST(PiecePickerTest, EmptyAndNoPeers) {
  PiecePicker empty(0, 1);
  EXPECT_EQ(empty.num_pickable(), 0u);
  EXPECT_EQ(empty.Pick(Bitfield(0)), std::nullopt);

  PiecePicker p(10, 1);
  EXPECT_EQ(p.num_pieces(), 10u);
  EXPECT_EQ(p.num_pickable(), 10u);
  EXPECT_EQ(p.Pick(Bitfield(10)), std::nullopt);  // peer has nothing
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, RarestFirst) {
  PiecePicker p(8, 42);
  // Availability: piece 0..7 = 3,2,3,1,3,3,2,3
  p.AddPeer(All(8));
  p.AddPeer(Bits(8, {0, 1, 2, 4, 5, 6, 7}));
  p.AddPeer(Bits(8, {0, 2, 4, 5, 7}));
  EXPECT_EQ(p.Availability(3), 1u);
  EXPECT_EQ(p.Availability(1), 2u);
  EXPECT_EQ(p.Availability(0), 3u);
  EXPECT_TRUE(p.InvariantsHold());

  EXPECT_EQ(p.Pick(All(8)), 3u);
  // A peer without piece 3 gets one of the availability-2 pieces.
  const std::optional<uint32_t> second = p.Pick(Bits(8, {0, 1, 2, 4, 5, 6, 7}));
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(*second == 1 || *second == 6) << *second;
  // A peer with only common pieces gets one of those.
  EXPECT_EQ(p.Pick(Bits(8, {5})), 5u);
}

TEST(PiecePickerTest, HadAndInProgressExcluded) {
  PiecePicker p(4, 7);
  p.AddPeer(All(4));
  p.AddHave(0);
  p.AddHave(0);
  p.AddHave(1);
  // Availability: 3, 2, 1, 1.
  p.SetWeHave(2);
  p.SetInProgress(3, true);
  EXPECT_EQ(p.num_pickable(), 2u);
  EXPECT_EQ(p.Pick(All(4)), 1u);
  EXPECT_EQ(p.Pick(Bits(4, {2, 3})), std::nullopt);
  p.SetInProgress(1, true);
  EXPECT_EQ(p.Pick(All(4)), 0u);
  p.SetWeHave(0);
  EXPECT_EQ(p.Pick(All(4)), std::nullopt);
  EXPECT_EQ(p.num_pickable(), 0u);
  EXPECT_TRUE(p.InvariantsHold());

  // In progress and had at once: both must be cleared before it is pickable again.
  p.SetInProgress(0, true);
  p.SetWeLack(0);
  EXPECT_EQ(p.Pick(All(4)), std::nullopt);
  p.SetInProgress(0, false);
  EXPECT_EQ(p.Pick(All(4)), 0u);

  p.SetInProgress(3, false);
  EXPECT_EQ(p.Pick(All(4)), 3u);
  p.SetWeLack(2);  // recheck failed
  const std::optional<uint32_t> pick = p.Pick(All(4));
  EXPECT_TRUE(pick == 2u || pick == 3u);
  EXPECT_EQ(p.num_have(), 0u);
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, RemovePeerAndAddHaveUpdateOrder) {
  PiecePicker p(3, 9);
  const Bitfield a = Bits(3, {0, 1});
  const Bitfield b = Bits(3, {0, 1, 2});
  p.AddPeer(a);
  p.AddPeer(b);
  // Availability 2, 2, 1.
  EXPECT_EQ(p.Pick(All(3)), 2u);
  p.AddHave(2);
  p.AddHave(2);  // 2, 2, 3
  std::optional<uint32_t> pick = p.Pick(All(3));
  EXPECT_TRUE(pick == 0u || pick == 1u);
  p.RemovePeer(a);  // 1, 1, 3
  p.AddHave(0);     // 2, 1, 3
  EXPECT_EQ(p.Pick(All(3)), 1u);
  p.RemovePeer(b);  // 1, 0, 2
  EXPECT_EQ(p.Availability(0), 1u);
  EXPECT_EQ(p.Availability(1), 0u);
  EXPECT_EQ(p.Availability(2), 2u);
  EXPECT_EQ(p.Pick(All(3)), 1u);
  // An unmatched removal never underflows.
  p.RemovePeer(b);
  p.RemovePeer(b);
  EXPECT_EQ(p.Availability(0), 0u);
  EXPECT_EQ(p.Availability(2), 0u);
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, OutOfRangeIgnored) {
  PiecePicker p(5, 3);
  p.AddHave(5);
  p.SetWeHave(100);
  p.SetInProgress(5, true);
  p.AddPeer(All(20));  // longer bitfield: read up to 5
  EXPECT_EQ(p.Availability(4), 1u);
  EXPECT_EQ(p.Availability(5), 0u);
  EXPECT_EQ(p.num_pickable(), 5u);
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, TiesAreSpreadAcrossSeeds) {
  constexpr uint32_t kPieces = 64;
  std::set<uint32_t> firsts;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    PiecePicker p(kPieces, seed);
    p.AddPeer(All(kPieces));
    firsts.insert(*p.Pick(All(kPieces)));
  }
  EXPECT_GT(firsts.size(), 32u);
}

TEST(PiecePickerTest, TiesAreSpreadWithinOnePicker) {
  constexpr uint32_t kPieces = 200;
  PiecePicker p(kPieces, 12345);
  p.AddPeer(All(kPieces));
  std::vector<uint32_t> picks;
  while (std::optional<uint32_t> pick = p.Pick(All(kPieces))) {
    picks.push_back(*pick);
    p.SetInProgress(*pick, true);
  }
  ASSERT_EQ(picks.size(), kPieces);
  EXPECT_FALSE(std::is_sorted(picks.begin(), picks.end()));
  // Roughly half of the first half should come from the lower half of the indices.
  const auto low = std::count_if(picks.begin(), picks.begin() + kPieces / 2,
                                 [](uint32_t i) { return i < kPieces / 2; });
  EXPECT_GT(low, 25);
  EXPECT_LT(low, 75);
}

TEST(PiecePickerTest, DeterministicForSeed) {
  auto run = [](uint64_t seed) {
    PiecePicker p(500, seed);
    std::mt19937_64 rng(99);
    std::vector<uint32_t> picks;
    for (int i = 0; i < 300; ++i) {
      p.AddHave(static_cast<uint32_t>(rng() % 500));
      if (std::optional<uint32_t> pick = p.Pick(All(500))) {
        picks.push_back(*pick);
        p.SetInProgress(*pick, true);
      }
    }
    return picks;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

// Brute-force model: the pick must be eligible and of minimal availability among eligible.
struct Model {
  explicit Model(uint32_t n) : avail(n, 0), had(n, false), in_progress(n, false) {}
  bool Eligible(uint32_t i, const Bitfield& peer) const {
    return peer.Get(i) && !had[i] && !in_progress[i];
  }
  std::vector<uint32_t> avail;
  std::vector<bool> had;
  std::vector<bool> in_progress;
};

Bitfield RandomBits(uint32_t n, std::mt19937_64& rng) {
  Bitfield b(n);
  // Mix dense, medium and very sparse peers so both Pick strategies run.
  const int kind = static_cast<int>(rng() % 4);
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t r = rng() % 1000;
    if ((kind == 0 && r < 900) || (kind == 1 && r < 500) || (kind == 2 && r < 50) ||
        (kind == 3 && r < 3)) {
      b.Set(i);
    }
  }
  return b;
}

void CrossCheck(uint32_t n, uint64_t seed, int ops, uint32_t extent = 1) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " seed=" << seed << " extent=" << extent);
  std::mt19937_64 rng(seed);
  PiecePicker picker(n, seed, extent);
  Model model(n);
  std::vector<Bitfield> peers;
  for (int op = 0; op < ops; ++op) {
    const uint64_t action = rng() % 100;
    const uint32_t piece = n == 0 ? 0 : static_cast<uint32_t>(rng() % n);
    if (action < 8) {
      peers.push_back(RandomBits(n, rng));
      picker.AddPeer(peers.back());
      for (uint32_t i = 0; i < n; ++i) model.avail[i] += peers.back().Get(i);
    } else if (action < 14 && !peers.empty()) {
      const size_t k = rng() % peers.size();
      picker.RemovePeer(peers[k]);
      for (uint32_t i = 0; i < n; ++i) model.avail[i] -= peers[k].Get(i);
      peers.erase(peers.begin() + static_cast<ptrdiff_t>(k));
    } else if (action < 30 && !peers.empty()) {
      // A `have` from an existing peer, as a session would report it.
      Bitfield& peer = peers[rng() % peers.size()];
      if (!peer.Get(piece) && piece < n) {
        peer.Set(piece);
        picker.AddHave(piece);
        ++model.avail[piece];
      }
    } else if (action < 38 && n > 0) {
      picker.SetWeHave(piece);
      model.had[piece] = true;
    } else if (action < 42 && n > 0) {
      picker.SetWeLack(piece);
      model.had[piece] = false;
    } else if (action < 52 && n > 0) {
      const bool in_progress = rng() % 2;
      picker.SetInProgress(piece, in_progress);
      model.in_progress[piece] = in_progress;
    } else {
      const Bitfield peer =
          (peers.empty() || rng() % 3 == 0) ? RandomBits(n, rng) : peers[rng() % peers.size()];
      const uint32_t hint =
          rng() % 2 ? PiecePicker::kNoExtent : static_cast<uint32_t>(rng() % (n / extent + 2));
      const std::optional<uint32_t> pick = picker.Pick(peer, hint);
      std::optional<uint32_t> min_avail;
      for (uint32_t i = 0; i < n; ++i) {
        if (model.Eligible(i, peer) && (!min_avail || model.avail[i] < *min_avail)) {
          min_avail = model.avail[i];
        }
      }
      ASSERT_EQ(pick.has_value(), min_avail.has_value()) << "op " << op;
      if (pick) {
        ASSERT_TRUE(model.Eligible(*pick, peer)) << "op " << op;
        ASSERT_EQ(model.avail[*pick], *min_avail) << "op " << op;
        if (extent > 1) {
          // Within its extent, the pick is the first of the rarest the peer can give.
          for (uint32_t i = *pick / extent * extent; i < *pick; ++i) {
            ASSERT_FALSE(model.Eligible(i, peer) && model.avail[i] == *min_avail) << "op " << op;
          }
        }
        if (extent > 1 && hint < (n + extent - 1) / extent) {
          // The peer's own extent wins the tie when it holds one of the rarest.
          bool in_hint = false;
          for (uint32_t i = hint * extent; i < std::min(n, (hint + 1) * extent); ++i) {
            in_hint |= model.Eligible(i, peer) && model.avail[i] == *min_avail;
          }
          ASSERT_EQ(in_hint, *pick / extent == hint) << "op " << op;
        }
        // Any subset of the peer's pieces that still holds the pick must pick it too: the walk
        // and the sparse scan agree on one order.
        Bitfield subset = Bits(n, {*pick});
        for (uint32_t i = 0; i < n; ++i) {
          if (peer.Get(i) && rng() % 50 == 0) subset.Set(i);
        }
        if (extent == 1) {
          ASSERT_EQ(picker.Pick(subset), pick) << "op " << op;
        }
        if (rng() % 2) {
          picker.SetInProgress(*pick, true);
          model.in_progress[*pick] = true;
        }
      }
    }
    if (op % 64 == 0 || op == ops - 1) {
      ASSERT_TRUE(picker.InvariantsHold()) << "op " << op;
      uint32_t pickable = 0;
      for (uint32_t i = 0; i < n; ++i) {
        ASSERT_EQ(picker.Availability(i), model.avail[i]) << "piece " << i;
        pickable += !model.had[i] && !model.in_progress[i];
      }
      ASSERT_EQ(picker.num_pickable(), pickable);
    }
  }
}

TEST(PiecePickerTest, RandomOpsMatchBruteForce) {
  for (uint32_t n : {1u, 7u, 8u, 64u, 65u, 300u, 2000u}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      for (uint32_t extent : {1u, 4u, 64u}) {
        CrossCheck(n, seed * 1000 + n, 5000, extent);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Picks for one peer as PieceAssembly makes them: each piece picked is started (in progress), and
// the peer's extent follows its last pick.
std::vector<uint32_t> PickRun(PiecePicker& p, const Bitfield& has, uint32_t* extent, int count) {
  std::vector<uint32_t> picks;
  for (int i = 0; i < count; ++i) {
    const std::optional<uint32_t> piece = p.Pick(has, *extent);
    if (!piece) break;
    picks.push_back(*piece);
    p.SetInProgress(*piece, true);
    *extent = p.ExtentOf(*piece);
  }
  return picks;
}

TEST(PiecePickerTest, ExtentSize) {
  EXPECT_EQ(PiecesPerExtent(1 << 20, 1024), 4u);
  EXPECT_EQ(PiecesPerExtent(256 << 10, 4096), 16u);
  EXPECT_EQ(PiecesPerExtent(16 << 10, 65536), 64u);  // capped: a scan of one extent stays short
  EXPECT_EQ(PiecesPerExtent(4 << 20, 256), 1u);
  EXPECT_EQ(PiecesPerExtent(16 << 20, 64), 1u);
  EXPECT_EQ(PiecesPerExtent(0, 100), 1u);
  // A small torrent keeps at least 32 extents, so leechers of one seed still differ.
  EXPECT_EQ(PiecesPerExtent(1 << 20, 64), 2u);
  EXPECT_EQ(PiecesPerExtent(32 << 10, 32), 1u);
  EXPECT_EQ(PiecesPerExtent(1 << 20, 0), 1u);
}

TEST(PiecePickerTest, OnePeerWithEverythingGetsWholeExtentsInOrder) {
  constexpr uint32_t kN = 64;
  PiecePicker p(kN, 7, 4);
  p.AddPeer(All(kN));
  uint32_t extent = PiecePicker::kNoExtent;
  const std::vector<uint32_t> picks = PickRun(p, All(kN), &extent, kN);
  ASSERT_EQ(picks.size(), kN);
  std::set<uint32_t> extents;
  for (size_t i = 0; i < picks.size(); i += 4) {
    EXPECT_EQ(picks[i] % 4, 0u) << "an extent is entered at its first piece";
    for (size_t j = 1; j < 4; ++j) EXPECT_EQ(picks[i + j], picks[i] + j) << "pick " << i + j;
    extents.insert(picks[i] / 4);
  }
  EXPECT_EQ(extents.size(), kN / 4);
  // The extents themselves still come in a random order, so peers do not all start at piece 0.
  std::vector<uint32_t> firsts;
  for (size_t i = 0; i < picks.size(); i += 4) firsts.push_back(picks[i]);
  EXPECT_FALSE(std::is_sorted(firsts.begin(), firsts.end()));
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, TwoPeersWorkInDifferentExtents) {
  constexpr uint32_t kN = 256;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    PiecePicker p(kN, seed, 4);
    p.AddPeer(All(kN));
    p.AddPeer(All(kN));
    uint32_t ea = PiecePicker::kNoExtent;
    uint32_t eb = PiecePicker::kNoExtent;
    std::vector<uint32_t> a;
    std::vector<uint32_t> b;
    for (int round = 0; round < 8; ++round) {  // turns: a, b, a, b, ...
      const std::vector<uint32_t> pa = PickRun(p, All(kN), &ea, 1);
      const std::vector<uint32_t> pb = PickRun(p, All(kN), &eb, 1);
      ASSERT_EQ(pa.size(), 1u);
      ASSERT_EQ(pb.size(), 1u);
      a.push_back(pa[0]);
      b.push_back(pb[0]);
      EXPECT_NE(pa[0] / 4, pb[0] / 4) << "round " << round;
    }
    for (size_t i = 1; i < a.size(); ++i) {
      if (i % 4 != 0) {
        EXPECT_EQ(a[i], a[i - 1] + 1);
        EXPECT_EQ(b[i], b[i - 1] + 1);
      }
    }
    EXPECT_TRUE(p.InvariantsHold());
  }
}

TEST(PiecePickerTest, RarerPiecesStillComeFirst) {
  constexpr uint32_t kN = 32;
  PiecePicker p(kN, 3, 4);
  p.AddPeer(All(kN));
  p.AddPeer(All(kN));
  uint32_t extent = PiecePicker::kNoExtent;
  const std::vector<uint32_t> first = PickRun(p, All(kN), &extent, 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0] % 4, 0u);
  // A piece elsewhere becomes rarer (one of the two peers never had it after all): it comes
  // before the rest of the peer's extent.
  const uint32_t rare = (first[0] + 9) % kN;
  p.RemoveHave(rare);
  EXPECT_EQ(p.Pick(All(kN), extent), rare);
  p.SetInProgress(rare, true);
  // The peer now works in the rare piece's extent, from its first piece.
  extent = p.ExtentOf(rare);
  EXPECT_EQ(p.Pick(All(kN), extent), rare - rare % 4);
  // Back in the first extent: its next piece.
  extent = p.ExtentOf(first[0]);
  EXPECT_EQ(p.Pick(All(kN), extent), first[0] + 1);
  // A rarer piece inside the peer's extent comes first even out of order.
  p.RemoveHave(first[0] + 3);
  EXPECT_EQ(p.Pick(All(kN), extent), first[0] + 3);
  EXPECT_TRUE(p.InvariantsHold());
}

TEST(PiecePickerTest, ExtentsSkipUnwantedHadAndMissingPieces) {
  constexpr uint32_t kN = 16;
  PiecePicker p(kN, 11, 8);
  p.AddPeer(All(kN));
  p.SetWanted(1, false);
  p.SetWeHave(2);
  Bitfield peer = All(kN);
  peer.Clear(3);
  // Extent 0 through its first piece: then past the unwanted, had and missing pieces.
  EXPECT_EQ(p.Pick(peer, 0), 0u);
  p.SetInProgress(0, true);
  EXPECT_EQ(p.Pick(peer, 0), 4u);
  EXPECT_TRUE(p.InvariantsHold());
}

}  // namespace
}  // namespace torrenty::engine
