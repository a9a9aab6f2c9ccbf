// File selection in the engine: which pieces a set of wanted files needs
// (engine/metainfo/file_map.h), and engine::Torrent fetching only those in the simulated swarm
// (tests/testing/torrent_sim.h) while still serving what it has.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/base/bitfield.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/file_map.h"
#include "engine/torrent/piece_picker.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using torrenty::testing::Swarm;
using torrenty::testing::WireEvent;
using wire::MsgType;

constexpr int64_t kPiece = 32 * 1024;

// Three files: 0 ends inside piece 3, 1 runs from piece 3 to piece 12, 2 from piece 12 to the end
// (piece 16, short). With file 1 unwanted, pieces 4..11 are the unwanted ones: 3 and 12 also
// hold bytes of the wanted files.
struct ThreeFiles {
  std::vector<uint8_t> payload;
  Metainfo meta;
};

ThreeFiles MakeThreeFiles(uint64_t seed) {
  std::mt19937_64 rng(seed);
  ThreeFiles t;
  t.payload = torrenty::testing::RandomBytes(rng, 550'000);
  t.meta = torrenty::testing::MakeMetainfoWithFiles(
      t.payload, kPiece, {{100'000, false}, {300'000, false}, {150'000, false}});
  return t;
}

bool IsUnwanted(uint32_t piece) { return piece >= 4 && piece <= 11; }

size_t CountTypeIn(const std::vector<WireEvent>& events, MsgType type) {
  size_t n = 0;
  for (const WireEvent& e : events) n += e.type == type ? 1 : 0;
  return n;
}

TEST(WantedPiecesTest, PiecesTouchingWantedFiles) {
  const ThreeFiles t = MakeThreeFiles(1);
  ASSERT_EQ(t.meta.num_pieces(), 17u);
  const Bitfield wanted = WantedPieces(t.meta, {true, false, true});
  for (uint32_t p = 0; p < 17; ++p) EXPECT_EQ(wanted.Get(p), !IsUnwanted(p)) << "piece " << p;
  // Missing flags count as wanted; nothing wanted gives no piece.
  EXPECT_TRUE(WantedPieces(t.meta, {}).all());
  EXPECT_TRUE(WantedPieces(t.meta, {false, false, false}).none());
  // Only file 1 wanted: pieces 3..12, which also touch files 0 and 2.
  const Bitfield middle = WantedPieces(t.meta, {false, true, false});
  EXPECT_EQ(middle.count(), 10u);
  EXPECT_EQ(FilesTouched(t.meta, middle), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(FilesTouched(t.meta, wanted), (std::vector<bool>{true, true, true}));
  Bitfield first(17);
  first.Set(0);
  EXPECT_EQ(FilesTouched(t.meta, first), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(PieceBytes(t.meta, wanted), 8 * kPiece + (550'000 - 16 * kPiece));
}

TEST(WantedPiecesTest, PadFilesDoNotMakePiecesWanted) {
  std::vector<uint8_t> payload(3 * kPiece, 0);
  // File 0 fills piece 0 but for a pad file that aligns file 2 to piece 1.
  const Metainfo meta = torrenty::testing::MakeMetainfoWithFiles(
      payload, kPiece, {{kPiece - 100, false}, {100, true}, {2 * kPiece, false}});
  const Bitfield wanted = WantedPieces(meta, {false, true, true});
  EXPECT_FALSE(wanted.Get(0));
  EXPECT_TRUE(wanted.Get(1));
  EXPECT_TRUE(wanted.Get(2));
  EXPECT_EQ(FilesTouched(meta, wanted), (std::vector<bool>{false, false, true}));
}

TEST(PiecePickerWantedTest, UnwantedPiecesAreNeverPicked) {
  PiecePicker picker(8, 7);
  Bitfield all(8);
  all.SetAll();
  picker.AddPeer(all);
  for (uint32_t p = 0; p < 8; ++p) {
    if (p % 2 == 1) picker.SetWanted(p, false);
  }
  EXPECT_TRUE(picker.InvariantsHold());
  EXPECT_EQ(picker.num_pickable(), 4u);
  std::set<uint32_t> picked;
  while (std::optional<uint32_t> p = picker.Pick(all)) {
    picked.insert(*p);
    picker.SetInProgress(*p, true);
  }
  EXPECT_EQ(picked, (std::set<uint32_t>{0, 2, 4, 6}));
  picker.SetWanted(3, true);
  EXPECT_EQ(picker.Pick(all), std::optional<uint32_t>(3));
  EXPECT_TRUE(picker.InvariantsHold());
}

// The case: a 3-file torrent with the middle file unwanted downloads only the pieces that
// touch files 0 and 2, reports kComplete once they are all had, and never asks for the others.
TEST(FileSelectionSimTest, MiddleFileUnwantedIsNeverRequested) {
  for (uint64_t seed = 9100; seed < 9104; ++seed) {
    SCOPED_TRACE("sim seed " + std::to_string(seed));
    const ThreeFiles t = MakeThreeFiles(seed);
    Swarm sim(t.meta, t.payload, {.seed = seed, .random_splits = seed % 2 == 1});
    const int s = sim.AddClient(true);
    const int l = sim.AddClient(false);
    const Bitfield wanted = WantedPieces(t.meta, {true, false, true});
    sim.torrent(l).SetWanted(wanted);
    EXPECT_FALSE(sim.torrent(l).done());
    sim.Introduce(l, s);
    ASSERT_TRUE(sim.RunUntil([&] { return sim.client(l).completed; }, 60'000));
    EXPECT_TRUE(sim.torrent(l).done());
    EXPECT_FALSE(sim.torrent(l).complete());
    // Nothing more is fetched after completion.
    sim.RunUntil([] { return false; }, 5'000);
    for (uint32_t p = 0; p < t.meta.num_pieces(); ++p) {
      EXPECT_EQ(sim.torrent(l).have().Get(p), !IsUnwanted(p)) << "piece " << p;
      EXPECT_EQ(sim.client(l).writes[p], IsUnwanted(p) ? 0 : 1) << "piece " << p;
      if (IsUnwanted(p)) continue;
      const size_t off = static_cast<size_t>(p) * kPiece;
      EXPECT_TRUE(std::equal(t.payload.begin() + off, t.payload.begin() + off + t.meta.PieceSize(p),
                             sim.client(l).disk.begin() + off))
          << "piece " << p;
    }
    const std::vector<WireEvent> sent = sim.Sent(l, s);
    size_t requests = 0;
    for (const WireEvent& e : sent) {
      if (e.type != MsgType::kRequest) continue;
      ++requests;
      EXPECT_FALSE(IsUnwanted(e.index)) << "requested unwanted piece " << e.index;
    }
    EXPECT_GT(requests, 0u);
    // Interest follows the wanted set: once it is done, the leecher says it is not interested.
    ASSERT_FALSE(sent.empty());
    bool not_interested_last = false;
    for (const WireEvent& e : sent) {
      if (e.type == MsgType::kInterested) not_interested_last = false;
      if (e.type == MsgType::kNotInterested) not_interested_last = true;
    }
    EXPECT_TRUE(not_interested_last);
  }
}

// A peer with only unwanted pieces is not interesting; a done torrent still serves what it has.
TEST(FileSelectionSimTest, DoneTorrentServesItsPiecesAndIgnoresUnwantedOnes) {
  const uint64_t seed = 9200;
  const ThreeFiles t = MakeThreeFiles(seed);
  Swarm sim(t.meta, t.payload, {.seed = seed});
  Bitfield unwanted_only(t.meta.num_pieces());
  for (uint32_t p = 4; p <= 11; ++p) unwanted_only.Set(p);
  const int u = sim.AddClientWith(unwanted_only);
  const int s = sim.AddClient(true);
  const int l = sim.AddClient(false);
  sim.torrent(l).SetWanted(WantedPieces(t.meta, {true, false, true}));
  sim.Introduce(l, u);
  sim.RunUntil([] { return false; }, 5'000);
  EXPECT_EQ(CountTypeIn(sim.Sent(l, u), MsgType::kInterested), 0u);
  EXPECT_EQ(CountTypeIn(sim.Sent(l, u), MsgType::kRequest), 0u);
  sim.Introduce(l, s);
  ASSERT_TRUE(sim.RunUntil([&] { return sim.client(l).completed; }, 60'000));
  // A newcomer that wants everything fetches the pieces the done torrent has from it.
  const int c = sim.AddClient(false);
  sim.Introduce(c, l);
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        for (uint32_t p = 0; p < t.meta.num_pieces(); ++p) {
          if (!IsUnwanted(p) && !sim.torrent(c).have().Get(p)) return false;
        }
        return true;
      },
      60'000));
  EXPECT_GT(sim.torrent(l).stats().uploaded_payload, 0);
}

}  // namespace
}  // namespace torrenty::engine
