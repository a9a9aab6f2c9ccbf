// Blocks served without a copy: the engine sends a block from memory io lends it (the read
// cache) and gives it back with kReleaseBlock once sent or dropped; the read cache keeps a lent
// entry until then and lends at most half its entries.
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/sha1.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/peer_session.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "io/session/read_cache.h"

namespace torrenty {
namespace {

using engine::Action;
using engine::PeerKey;

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed + (i >> 9));
  return v;
}

std::vector<uint64_t> Released(const std::vector<Action>& actions) {
  std::vector<uint64_t> pins;
  for (const Action& a : actions)
    if (a.type == Action::Type::kReleaseBlock) pins.push_back(a.pin);
  return pins;
}

// Drains `s` in sends of at most `chunk` bytes, gathered from up to `max_parts` parts at a time.
std::vector<uint8_t> DrainGathered(engine::PeerSession& s, size_t chunk, size_t max_parts) {
  std::vector<uint8_t> wire;
  std::vector<absl::Span<const uint8_t>> parts(max_parts);
  for (;;) {
    const size_t n = s.NextSendParts(absl::MakeSpan(parts));
    if (n == 0) return wire;
    size_t left = chunk;
    for (size_t i = 0; i < n && left > 0; ++i) {
      const size_t take = std::min(left, parts[i].size());
      wire.insert(wire.end(), parts[i].begin(), parts[i].begin() + take);
      left -= take;
    }
    s.HandleSent(chunk - left, engine::Instant{0});
  }
}

// The lent path puts the same bytes on the wire, in the same order, as the copying one, for any
// way the kernel splits the sends; each pin comes back once, after its block's last byte.
TEST(LentBlocks, WireBytesAndOrderMatchTheCopyingPath) {
  const std::vector<uint8_t> a = Pattern(engine::kBlockSize, 1), b = Pattern(1000, 2);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{13}, size_t{4096}, size_t{1} << 20}) {
    for (size_t max_parts : {size_t{1}, size_t{2}, size_t{3}, size_t{32}}) {
      std::vector<Action> lent_actions, copy_actions;
      engine::PeerSession lent(1, {}, false, 8, engine::Instant{0}, &lent_actions);
      engine::PeerSession copy(1, {}, false, 8, engine::Instant{0}, &copy_actions);
      for (engine::PeerSession* s : {&lent, &copy}) s->SendSimple(engine::wire::MsgType::kUnchoke);
      lent.SendBlockRef(3, 0, a, 11);
      copy.SendBlock(3, 0, a);
      for (engine::PeerSession* s : {&lent, &copy}) s->SendHave(5);
      lent.SendBlockRef(4, 16384, b, 12);
      copy.SendBlock(4, 16384, b);
      EXPECT_EQ(lent.send_queue_bytes(), copy.send_queue_bytes());
      const std::vector<uint8_t> got = DrainGathered(lent, chunk, max_parts);
      // Something queued after the first batch went out lands in the next one, still in order.
      EXPECT_EQ(got, DrainGathered(copy, chunk, max_parts)) << chunk << " " << max_parts;
      EXPECT_EQ(Released(lent_actions), (std::vector<uint64_t>{11, 12}));
      EXPECT_EQ(lent.send_queue_bytes(), 0u);
    }
  }
}

TEST(LentBlocks, PartsPointIntoTheLentMemoryAndPinsWaitForTheLastByte) {
  const std::vector<uint8_t> a = Pattern(engine::kBlockSize, 3);
  std::vector<Action> actions;
  engine::PeerSession s(1, {}, false, 8, engine::Instant{0}, &actions);
  s.SendBlockRef(0, 0, a, 7);
  absl::Span<const uint8_t> parts[4];
  ASSERT_EQ(s.NextSendParts(absl::MakeSpan(parts)), 2u);
  EXPECT_EQ(parts[0].size(), engine::wire::kPieceHeaderSize);
  EXPECT_EQ(parts[1].data(), a.data());  // not a copy
  s.HandleSent(engine::wire::kPieceHeaderSize + a.size() - 1, engine::Instant{0});
  EXPECT_TRUE(Released(actions).empty());
  ASSERT_EQ(s.NextSendParts(absl::MakeSpan(parts)), 1u);
  EXPECT_EQ(parts[0].data(), a.data() + a.size() - 1);
  s.HandleSent(1, engine::Instant{0});
  EXPECT_EQ(Released(actions), (std::vector<uint64_t>{7}));
}

TEST(LentBlocks, DroppingThePeerReleasesEveryQueuedBlockOnce) {
  const std::vector<uint8_t> a = Pattern(100, 4);
  std::vector<Action> actions;
  engine::PeerSession s(1, {}, false, 8, engine::Instant{0}, &actions);
  s.SendBlockRef(0, 0, a, 1);
  s.SendBlockRef(0, 100, a, 2);
  absl::Span<const uint8_t> parts[8];
  ASSERT_GT(s.NextSendParts(absl::MakeSpan(parts)), 0u);
  s.HandleSent(engine::wire::kPieceHeaderSize + a.size(), engine::Instant{0});  // pin 1 sent
  s.SendBlockRef(1, 0, a, 3);                                                   // next batch
  s.ReleaseBlocks();
  EXPECT_EQ(Released(actions), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(s.send_queue_bytes(), 0u);
}

// ---------------------------------------------------------------------------------------------
// The torrent: a lent block is sent to an unchoked peer and given back otherwise.

engine::Metainfo MakeMeta(const std::vector<uint8_t>& payload, uint32_t pieces) {
  engine::Metainfo m;
  m.name = "lent.bin";
  m.piece_length = static_cast<int64_t>(payload.size() / pieces);
  m.total_length = static_cast<int64_t>(payload.size());
  for (uint32_t i = 0; i < pieces; ++i) {
    m.piece_hashes.push_back(engine::Sha1(absl::MakeConstSpan(payload).subspan(
        size_t{i} * m.piece_length, static_cast<size_t>(m.piece_length))));
  }
  m.info_hash.fill(0x42);
  m.files.push_back(engine::FileEntry{.path = {}, .length = m.total_length, .offset = 0});
  return m;
}

struct Seed {
  Seed()
      : payload(Pattern(4 * engine::kBlockSize * 4, 9)),
        meta(MakeMeta(payload, 4)),
        t(meta, Cfg()) {
    engine::Bitfield all(4);
    all.SetAll();
    t.SetHave(all);
    t.HandlePeerConnected(key, engine::PeerAddress{0x7F000001, 7001}, false, engine::Instant{1000});
    std::vector<uint8_t> hs(engine::wire::kHandshakeSize);
    engine::PeerId id{};
    id.fill(1);
    engine::wire::EncodeHandshake(meta.info_hash, id, hs.data());
    Feed(hs);
    std::vector<uint8_t> interested(engine::wire::kSimpleSize);
    engine::wire::EncodeSimple(engine::wire::MsgType::kInterested, interested.data());
    Feed(interested);
  }
  static engine::TorrentConfig Cfg() {
    engine::TorrentConfig c;
    c.self_id.fill(0xEE);
    return c;
  }
  void Feed(const std::vector<uint8_t>& bytes) {
    t.HandleBytes(key, bytes, engine::Instant{1000});
    Pump();
  }
  void Request(uint32_t piece, uint32_t begin) {
    std::vector<uint8_t> r(engine::wire::kRequestSize);
    engine::wire::EncodeRequest(piece, begin, engine::kBlockSize, r.data());
    Feed(r);
  }
  // Answers every pending kReadBlock by lending the payload's bytes; sends everything.
  void Pump() {
    for (;;) {
      std::vector<Action> batch;
      t.TakeActions(&batch);
      if (batch.empty()) return;
      for (Action& a : batch) {
        if (a.type == Action::Type::kReadBlock)
          reads.push_back({a.peer, a.piece, a.begin, a.length});
        if (a.type == Action::Type::kReleaseBlock) released.push_back(a.pin);
        if (a.type == Action::Type::kFlush) {
          absl::Span<const uint8_t> parts[32];
          for (size_t n; (n = t.NextSendParts(a.peer, absl::MakeSpan(parts))) > 0;) {
            size_t total = 0;
            for (size_t i = 0; i < n; ++i) {
              wire.insert(wire.end(), parts[i].begin(), parts[i].end());
              total += parts[i].size();
            }
            t.HandleSent(a.peer, total, engine::Instant{1000});
          }
        }
      }
    }
  }
  void Answer(uint64_t pin) {
    const Read a = reads.front();
    reads.erase(reads.begin());
    t.HandleBlockRead(a.peer, a.piece, a.begin,
                      absl::MakeConstSpan(payload).subspan(
                          size_t{a.piece} * meta.piece_length + a.begin, a.length),
                      absl::OkStatus(), engine::Instant{1000}, pin);
    Pump();
  }
  std::vector<uint8_t> payload;
  engine::Metainfo meta;
  engine::Torrent t;
  PeerKey key = 1;
  struct Read {
    PeerKey peer;
    uint32_t piece, begin, length;
  };
  std::vector<Read> reads;
  std::vector<uint64_t> released;
  std::vector<uint8_t> wire;
};

TEST(LentBlocks, TorrentSendsTheLentBytesAndCountsThem) {
  Seed s;
  s.Request(2, engine::kBlockSize);
  ASSERT_EQ(s.reads.size(), 1u);
  s.Answer(5);
  std::vector<uint8_t> expect(engine::wire::kPieceHeaderSize);
  engine::wire::EncodePieceHeader(2, engine::kBlockSize, engine::kBlockSize, expect.data());
  const size_t at = 2 * static_cast<size_t>(s.meta.piece_length) + engine::kBlockSize;
  expect.insert(expect.end(), s.payload.begin() + at, s.payload.begin() + at + engine::kBlockSize);
  ASSERT_GE(s.wire.size(), expect.size());
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), s.wire.end() - expect.size()));
  EXPECT_EQ(s.released, (std::vector<uint64_t>{5}));
  EXPECT_EQ(s.t.stats().uploaded_payload, engine::kBlockSize);
}

TEST(LentBlocks, ClosedPeerGetsNothingAndThePinComesBack) {
  Seed s;
  s.Request(0, 0);
  ASSERT_EQ(s.reads.size(), 1u);
  s.t.HandlePeerClosed(s.key, engine::Instant{1000});
  s.Pump();
  s.Answer(9);
  EXPECT_EQ(s.released, (std::vector<uint64_t>{9}));
  EXPECT_EQ(s.t.stats().uploaded_payload, 0);
}

// ---------------------------------------------------------------------------------------------
// The read cache.

struct Cache {
  explicit Cache(int64_t budget)
      : cache(
            budget, 2,
            [this](io::TorrentId, uint32_t piece, int64_t, absl::Span<uint8_t> buf, size_t slot) {
              std::memset(buf.data(), static_cast<int>(piece), buf.size());
              loads.push_back(slot);
              ++loaded;
              return absl::OkStatus();
            },
            [this](const io::BlockRead& r, absl::Span<const uint8_t> data, const absl::Status&,
                   uint64_t pin) {
              answers.push_back({r.piece, pin, data.empty() ? -1 : data[0]});
            }) {}
  bool Serve(uint32_t piece) {
    const bool ok = cache.Serve(io::BlockRead{1, 1, piece, 0, engine::kBlockSize},
                                4 * engine::kBlockSize, 4 * engine::kBlockSize);
    while (!loads.empty()) {
      const size_t slot = loads.back();
      loads.pop_back();
      cache.Loaded(slot, absl::OkStatus());
    }
    return ok;
  }
  struct Answer {
    uint32_t piece;
    uint64_t pin;
    int first;
  };
  io::ReadCache cache;
  std::vector<size_t> loads;
  size_t loaded = 0;
  std::vector<Answer> answers;
};

TEST(LentBlocks, ReadCacheKeepsLentEntriesAndLendsAtMostHalf) {
  // Room for two entries of one piece each (the floor is two too).
  Cache c(2 * 4 * engine::kBlockSize);
  ASSERT_TRUE(c.Serve(0));
  ASSERT_EQ(c.answers.size(), 1u);
  EXPECT_NE(c.answers[0].pin, 0u);
  EXPECT_EQ(c.answers[0].first, 0);
  ASSERT_TRUE(c.Serve(1));  // a second entry; half are lent already: this one is not
  ASSERT_EQ(c.answers.size(), 2u);
  EXPECT_EQ(c.answers[1].pin, 0u);
  EXPECT_EQ(c.answers[1].first, 1);
  ASSERT_TRUE(c.Serve(2));  // evicts piece 1's idle entry, never piece 0's lent one
  EXPECT_EQ(c.answers[2].first, 2);
  EXPECT_EQ(c.answers[2].pin, 0u);
  ASSERT_TRUE(c.Serve(0));  // still cached: no load
  EXPECT_EQ(c.answers[3].pin, c.answers[0].pin);
  EXPECT_EQ(c.cache.pinned(), 2u);
  c.cache.Release(c.answers[0].pin);
  c.cache.Release(c.answers[3].pin);
  EXPECT_EQ(c.cache.pinned(), 0u);
  c.cache.Release(c.answers[0].pin);  // one too many is ignored
  EXPECT_EQ(c.cache.pinned(), 0u);
  EXPECT_LE(c.cache.bytes(), 2 * 4 * engine::kBlockSize);
}

TEST(LentBlocks, ReadCacheNeverOverwritesALentEntry) {
  Cache c(4 * 4 * engine::kBlockSize);  // four entries: two may be lent
  for (uint32_t piece = 0; piece < 4; ++piece) ASSERT_TRUE(c.Serve(piece));
  // Lent while under half of the entries then existed: pieces 0 and 2.
  EXPECT_NE(c.answers[0].pin, 0u);
  EXPECT_EQ(c.answers[1].pin, 0u);
  EXPECT_NE(c.answers[2].pin, 0u);
  EXPECT_EQ(c.answers[3].pin, 0u);
  for (uint32_t piece = 4; piece < 20; ++piece) ASSERT_TRUE(c.Serve(piece));  // churn
  const size_t before = c.answers.size(), loaded = c.loaded;
  ASSERT_TRUE(c.Serve(0));
  ASSERT_TRUE(c.Serve(2));
  EXPECT_EQ(c.loaded, loaded);
  EXPECT_EQ(c.answers[before].pin, c.answers[0].pin);  // the same entries, never reloaded
  EXPECT_EQ(c.answers[before + 1].pin, c.answers[2].pin);
  EXPECT_EQ(c.answers[before].first, 0);
  EXPECT_EQ(c.answers[before + 1].first, 2);
  EXPECT_LE(c.cache.bytes(), 4 * 4 * engine::kBlockSize);
}

}  // namespace
}  // namespace torrenty
