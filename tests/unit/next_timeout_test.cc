// engine::Torrent::NextTimeout(): a driver that sleeps until the next deadline instead of ticking
// at a fixed rate must see every timer fire on time. These swarms run with
// Swarm::Options::tick_on_deadline: a client is ticked only when its NextTimeout() has come, and
// while nothing moves virtual time jumps straight there (Swarm::RunOnDeadlines). The simulator
// also checks after every tick that NextTimeout() lies past it, so a driver never spins.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"
#include "tests/testing/torrent_sim.h"

namespace torrenty::engine {
namespace {

using torrenty::testing::Swarm;
using torrenty::testing::WireEvent;
using wire::MsgType;

constexpr PeerAddress kRawAddress{0x0A0000C8, 50000};
const TorrentConfig kDefaults;

struct Content {
  std::vector<uint8_t> payload;
  Metainfo meta;
};

Content MakeContent(uint64_t seed, uint32_t num_pieces, int64_t piece_length) {
  std::mt19937_64 rng(seed);
  Content c;
  c.payload = torrenty::testing::RandomBytes(rng, static_cast<size_t>(piece_length) * num_pieces);
  c.meta = torrenty::testing::MakeMetainfo(c.payload, piece_length);
  return c;
}

Swarm::Options OnDeadlines(uint64_t seed = 1) {
  Swarm::Options o;
  o.seed = seed;
  o.tick_on_deadline = true;
  return o;
}

// A raw peer dials `to`, handshakes, says it is interested and falls silent. Returns the pipe;
// `*heard_at` is when `to` received those bytes.
int AttachSilentRaw(Swarm& sim, int to, const InfoHash& info_hash, uint32_t id, int64_t* heard_at) {
  const int raw = sim.AttachRaw(to, PeerAddress{kRawAddress.ip + id, kRawAddress.port});
  std::vector<uint8_t> bytes(wire::kHandshakeSize + wire::kSimpleSize);
  wire::EncodeHandshake(info_hash, torrenty::testing::MakeSimPeerId(1000 + id), bytes.data());
  wire::EncodeSimple(MsgType::kInterested, bytes.data() + wire::kHandshakeSize);
  sim.RawSend(raw, bytes);
  sim.Step();  // delivers them
  *heard_at = sim.now().ms;
  return raw;
}

// A raw peer with all of a 4-piece torrent dials `to`, unchokes it and then never sends a block.
int AttachServingRaw(Swarm& sim, int to, const InfoHash& info_hash, uint32_t id) {
  const int raw = sim.AttachRaw(to, PeerAddress{kRawAddress.ip + id, kRawAddress.port});
  std::vector<uint8_t> bytes(wire::kHandshakeSize + wire::kBitfieldHeaderSize + 1 +
                             wire::kSimpleSize);
  uint8_t* out = bytes.data();
  wire::EncodeHandshake(info_hash, torrenty::testing::MakeSimPeerId(1000 + id), out);
  out += wire::kHandshakeSize;
  const uint8_t all = 0xF0;
  out += wire::EncodeBitfield(absl::MakeConstSpan(&all, 1), out);
  wire::EncodeSimple(MsgType::kUnchoke, out);
  sim.RawSend(raw, bytes);
  sim.Step();  // delivers them
  return raw;
}

std::vector<int64_t> TimesOf(const std::vector<WireEvent>& events, MsgType type) {
  std::vector<int64_t> out;
  for (const WireEvent& e : events)
    if (e.type == type) out.push_back(e.time_ms);
  return out;
}

bool Contains(const std::vector<int64_t>& v, int64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A peer that connects and never completes its handshake is dropped exactly at the handshake
// timeout, by the one tick the torrent asked for.
TEST(NextTimeoutTest, SilentPeerIsDroppedAtTheHandshakeTimeout) {
  const Content content = MakeContent(1, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int seed = sim.AddClient(/*seed=*/true);
  const int64_t connected_at = sim.now().ms;
  sim.AttachRaw(seed, kRawAddress);
  EXPECT_EQ(sim.torrent(seed).NextTimeout().ms, connected_at + kDefaults.handshake_timeout_ms + 1);

  ASSERT_TRUE(sim.RunOnDeadlines([&] { return !sim.client(seed).closes.empty(); }, 60'000));
  const auto& close = sim.client(seed).closes.front();
  EXPECT_EQ(close.reason, CloseReason::kTimeout);
  EXPECT_EQ(close.time_ms, connected_at + kDefaults.handshake_timeout_ms + 1);
  EXPECT_EQ(sim.client(seed).tick_times.size(), 1u);
  // Nothing is left to time: an idle seed needs no timer at all.
  EXPECT_EQ(sim.torrent(seed).NextTimeout(), kNoTimeout);
}

// A silent but handshaken peer gets a keep-alive 120 s after the last bytes we sent it, and is
// dropped 300 s after we last heard from it; choke rounds run every 10 s in between.
TEST(NextTimeoutTest, KeepAliveAt120sIdleDropAt300sChokeRoundEvery10s) {
  const Content content = MakeContent(2, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int seed = sim.AddClient(/*seed=*/true);
  int64_t heard_at = 0;
  const int raw = AttachSilentRaw(sim, seed, content.meta.info_hash, 1, &heard_at);
  ASSERT_TRUE(sim.torrent(seed).IsHandshaken(sim.pipe(raw).end[0].key));

  ASSERT_TRUE(sim.RunOnDeadlines([&] { return !sim.client(seed).closes.empty(); }, 400'000));
  const auto& close = sim.client(seed).closes.front();
  EXPECT_EQ(close.reason, CloseReason::kTimeout);
  EXPECT_EQ(close.time_ms, heard_at + kDefaults.idle_timeout_ms + 1);

  // What the seed sent: bitfield and unchoke when the peer arrived, then only keep-alives, each
  // queued by the tick 120 s + 1 ms after the previous send completed (one step later).
  const std::vector<WireEvent>& sent = sim.pipe(raw).end[0].tap.events();
  ASSERT_GE(sent.size(), 2u);
  std::vector<int64_t> sends;
  for (const WireEvent& e : sent) sends.push_back(e.time_ms);
  const std::vector<int64_t> keepalives = TimesOf(sent, MsgType::kKeepAlive);
  ASSERT_EQ(keepalives.size(), 2u);  // at ~120 s and ~240 s; the drop comes at 300 s
  const std::vector<int64_t>& ticks = sim.client(seed).tick_times;
  int64_t last_send = TimesOf(sent, MsgType::kUnchoke).back();
  for (int64_t k : keepalives) {
    const int64_t due = last_send + kDefaults.keepalive_interval_ms + 1;
    EXPECT_TRUE(Contains(ticks, due)) << "no tick at the keep-alive deadline " << due;
    EXPECT_EQ(k, due + 100);  // the sim sends queued bytes on the next step
    last_send = k;
  }

  // Between those, the only timer is the choker's: the ticks come 10 s apart (keep-alive and
  // idle deadlines fall in between), not every second.
  int rounds_10s_apart = 0;
  for (size_t i = 1; i < ticks.size(); ++i) {
    EXPECT_GE(ticks[i] - ticks[i - 1], 1) << "two ticks at one instant";
    if (ticks[i] - ticks[i - 1] == kDefaults.choke_round_ms) ++rounds_10s_apart;
  }
  EXPECT_GE(rounds_10s_apart, 25);
  EXPECT_LE(ticks.size(), 40u);  // 300 s of fixed 1 s ticks would be 300
}

// Three interested peers and one upload slot: the optimistic unchoke rotates every 30 s exactly.
TEST(NextTimeoutTest, OptimisticUnchokeRotatesEvery30s) {
  const Content content = MakeContent(3, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  TorrentConfig config;
  config.unchoke_slots = 1;  // the optimistic slot alone
  const int seed = sim.AddClient(/*seed=*/true, config);
  std::vector<int> raws;
  for (uint32_t i = 0; i < 3; ++i) {
    int64_t heard_at = 0;
    raws.push_back(AttachSilentRaw(sim, seed, content.meta.info_hash, i, &heard_at));
  }
  const int64_t start = sim.now().ms;
  EXPECT_FALSE(sim.RunOnDeadlines([] { return false; }, 100'000));

  std::vector<int64_t> unchokes;
  for (int raw : raws) {
    for (int64_t t : TimesOf(sim.pipe(raw).end[0].tap.events(), MsgType::kUnchoke)) {
      unchokes.push_back(t);
    }
  }
  std::sort(unchokes.begin(), unchokes.end());
  ASSERT_GE(unchokes.size(), 4u);
  // After the first round, each rotation comes exactly 30 s after the previous one (+ the step
  // the sim takes to send the message).
  for (size_t i = 2; i < unchokes.size(); ++i) {
    EXPECT_EQ(unchokes[i] - unchokes[i - 1], kDefaults.optimistic_unchoke_interval_ms)
        << "unchoke " << i << " at +" << unchokes[i] - start << " ms";
  }
}

// A peer that cannot be reached is redialled after 10 s, then 20 s, then 40 s, each time at the
// exact moment its backoff ends.
TEST(NextTimeoutTest, ReconnectBackoffIsExact) {
  const Content content = MakeContent(4, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int seed = sim.AddClient(/*seed=*/true);
  const int leecher = sim.AddClient(/*seed=*/false);
  sim.Crash(seed, /*offline=*/true);
  sim.Introduce(leecher, seed);
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.client(leecher).dials.size() >= 4; }, 200'000));
  const auto& dials = sim.client(leecher).dials;
  const int64_t base = kDefaults.connect_retry_base_ms;
  EXPECT_EQ(dials[1].first - dials[0].first, base);
  EXPECT_EQ(dials[2].first - dials[1].first, 2 * base);
  EXPECT_EQ(dials[3].first - dials[2].first, 4 * base);
  // Alone and with nothing to dial, it asks the tracker again every 15 s meanwhile.
  EXPECT_GE(sim.client(leecher).need_peers, 4);
}

// A download runs to the end when clients are ticked only at their deadlines: blocks freed by a
// choke, snub or disconnect, and the memory budget shared by two shards, are picked up by the
// polls NextTimeout() asks for.
TEST(NextTimeoutTest, SwarmsCompleteWhenTickedOnlyAtDeadlines) {
  for (uint64_t seed_value : {1, 2, 3}) {
    SCOPED_TRACE(seed_value);
    const Content content = MakeContent(10 + seed_value, 24, 64 * 1024);
    Swarm::Options options = OnDeadlines(seed_value);
    options.random_splits = true;
    LocalPieceMemory memory(3 * 64 * 1024);  // outlives the swarm, whose torrents release into it
    Swarm sim(content.meta, content.payload, options);
    const int seed_a = sim.AddClient(/*seed=*/true);
    const int seed_b = sim.AddClient(/*seed=*/true);
    TorrentConfig config;
    config.piece_memory = &memory;
    config.pieces_in_flight_max = 2;
    const int shard0 = sim.AddClient(/*seed=*/false, config);
    const int shard1 = sim.AddShard(shard0, config);
    const int other = sim.AddClient(/*seed=*/false);
    sim.client(seed_a).upload_per_step = 32 * 1024;
    for (int from : {shard0, other}) sim.Introduce(from, seed_a);
    for (int from : {shard1, other}) sim.Introduce(from, seed_b);
    // One seeder goes away midway; its blocks in flight must be fetched from the other.
    ASSERT_TRUE(
        sim.RunOnDeadlines([&] { return sim.torrent(shard0).have().count() >= 6; }, 120'000));
    sim.Crash(seed_b, /*offline=*/true);
    for (int from : {shard1}) sim.Introduce(from, seed_a);
    ASSERT_TRUE(sim.RunOnDeadlines(
        [&] {
          return sim.client(other).completed &&
                 sim.torrent(shard0).have().count() + sim.torrent(shard1).have().count() >=
                     content.meta.num_pieces();
        },
        600'000));
    EXPECT_EQ(sim.client(other).disk, sim.payload());
  }
}

// A connection slot freed by the engine itself (here: banning a peer for a corrupt piece) goes to
// a waiting candidate at once, not at the next timer.
TEST(NextTimeoutTest, FreedSlotIsDialledAtOnce) {
  const Content content = MakeContent(7, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int liar = sim.AddClient(/*seed=*/true);
  const int honest = sim.AddClient(/*seed=*/true);
  sim.client(liar).corrupt = true;
  TorrentConfig config;
  config.connections_max = 1;
  const int leecher = sim.AddClient(/*seed=*/false, config);
  sim.Introduce(leecher, liar);
  sim.Introduce(leecher, honest);  // no slot left: waits
  ASSERT_EQ(sim.client(leecher).dials.size(), 1u);
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.client(leecher).dials.size() >= 2; }, 60'000));
  ASSERT_FALSE(sim.client(leecher).closes.empty());
  const auto& ban = sim.client(leecher).closes.front();
  EXPECT_EQ(ban.reason, CloseReason::kBanned);
  EXPECT_EQ(sim.client(leecher).dials[1].second, sim.client(honest).address);
  EXPECT_LE(sim.client(leecher).dials[1].first - ban.time_ms, 1);
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.client(leecher).completed; }, 60'000));
}

// A peer that unchokes us and then sends nothing is snubbed 60 s later, to the millisecond: its
// requests go back and it keeps a single one to prove itself with.
TEST(NextTimeoutTest, SnubAt60s) {
  const Content content = MakeContent(8, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int leecher = sim.AddClient(/*seed=*/false);
  const int raw = AttachServingRaw(sim, leecher, content.meta.info_hash, 1);
  const int64_t unchoked_at = sim.now().ms;
  auto requests = [&] { return TimesOf(sim.pipe(raw).end[0].tap.events(), MsgType::kRequest); };
  sim.Step();                         // sends the requests
  ASSERT_EQ(requests().size(), 16u);  // every block of the torrent
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return requests().size() > 16; }, 120'000));
  EXPECT_EQ(requests().size(), 17u);
  const int64_t snub_at = unchoked_at + kDefaults.snub_timeout_ms + 1;
  EXPECT_TRUE(Contains(sim.client(leecher).tick_times, snub_at));
  EXPECT_EQ(requests().back(), snub_at + 100);  // sent on the next step
}

// Without a single connection slot the candidates wait; the torrent neither spins nor asks the
// tracker for more peers it could not dial anyway.
TEST(NextTimeoutTest, NoConnectionSlotsDoesNotSpin) {
  const Content content = MakeContent(9, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int seed = sim.AddClient(/*seed=*/true);
  TorrentConfig config;
  config.connections_max = 0;
  const int leecher = sim.AddClient(/*seed=*/false, config);
  sim.Introduce(leecher, seed);
  EXPECT_FALSE(sim.RunOnDeadlines([] { return false; }, 60'000));
  EXPECT_TRUE(sim.client(leecher).dials.empty());
  EXPECT_LE(sim.client(leecher).tick_times.size(), 2u);
}

// Blocks a choking peer gives back reach a peer that has room for requests at the next poll, 1 s
// after the last tick, not at the next deadline of some timer (the choke round, 10 s).
TEST(NextTimeoutTest, BlocksFreedByAChokeReachAnIdlePeerWithinAPoll) {
  const Content content = MakeContent(5, 4, 64 * 1024);
  Swarm sim(content.meta, content.payload, OnDeadlines());
  TorrentConfig config;
  config.pieces_in_flight_max = 1;  // A holds every free block; B waits with room
  config.requests_per_peer_max = 4;
  const int leecher = sim.AddClient(/*seed=*/false, config);
  const int a = AttachServingRaw(sim, leecher, content.meta.info_hash, 1);
  const int b = AttachServingRaw(sim, leecher, content.meta.info_hash, 2);
  auto requests_to = [&](int raw) {
    return TimesOf(sim.pipe(raw).end[0].tap.events(), MsgType::kRequest);
  };
  ASSERT_EQ(requests_to(a).size(), 4u);
  ASSERT_TRUE(requests_to(b).empty());
  EXPECT_FALSE(sim.RunOnDeadlines([] { return false; }, 5'000));

  std::vector<uint8_t> choke(wire::kSimpleSize);
  wire::EncodeSimple(MsgType::kChoke, choke.data());
  sim.RawSend(a, choke);
  sim.Step();
  const int64_t choked_at = sim.now().ms;
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return !requests_to(b).empty(); }, 20'000));
  EXPECT_LE(requests_to(b).front() - choked_at, 1'000 + 100);
}

// Piece buffers kept for reuse go back to a shared budget within a poll of another shard asking
// for memory, even when the torrent has no other timer for a while.
TEST(NextTimeoutTest, IdleBuffersGoBackWhenAnotherShardWantsMemory) {
  const Content content = MakeContent(6, 8, 64 * 1024);
  LocalPieceMemory memory(4 * 64 * 1024);  // outlives the swarm, whose torrents release into it
  Swarm sim(content.meta, content.payload, OnDeadlines());
  const int seed = sim.AddClient(/*seed=*/true);
  TorrentConfig config;
  config.piece_memory = &memory;
  config.pieces_in_flight_max = 2;  // within the budget: this shard is never refused itself
  const int leecher = sim.AddClient(/*seed=*/false, config);
  sim.client(seed).upload_per_step = 64 * 1024;
  sim.Introduce(leecher, seed);
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.torrent(leecher).have().count() >= 3; }, 60'000));
  sim.Crash(seed, /*offline=*/true);  // the download stops with buffers kept for reuse
  ASSERT_TRUE(sim.RunOnDeadlines([&] { return sim.Quiet(); }, 5'000));
  ASSERT_GT(sim.torrent(leecher).piece_buffer_bytes(), 0);
  ASSERT_FALSE(memory.TryReserve(int64_t{1} << 30));  // another shard is refused
  ASSERT_TRUE(memory.wanted());
  const int64_t asked_at = sim.now().ms;
  ASSERT_TRUE(
      sim.RunOnDeadlines([&] { return sim.torrent(leecher).piece_buffer_bytes() == 0; }, 20'000));
  EXPECT_LE(sim.now().ms - asked_at, 1'000);
}

}  // namespace
}  // namespace torrenty::engine
