// Every named limit that protects Torrenty from hostile input, tested at the limit and one past it
// through the public engine APIs (docs/security.md lists them): bencode depth, input size and item
// count; metainfo piece length, piece count, file count and path length; wire message length and
// bitfield size; request length and the per-peer request queue; and blocks nobody asked for.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/sha1.h"
#include "engine/base/types.h"
#include "engine/codec/bencode.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/torrent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// bencode

std::string Nested(size_t depth) { return std::string(depth, 'l') + std::string(depth, 'e'); }

TEST(BencodeLimits, DepthAtLimitAndOnePast) {
  const bencode::DecodeLimits limits;
  EXPECT_EQ(limits.max_depth, 256u);
  EXPECT_TRUE(bencode::Decode(Nested(limits.max_depth)).ok());
  absl::StatusOr<bencode::Value> past = bencode::Decode(Nested(limits.max_depth + 1));
  ASSERT_FALSE(past.ok());
  EXPECT_THAT(past.status().message(), HasSubstr("nesting too deep"));
  // Far past it (the hostile-torrent corpus uses 100 000): rejected without exhausting the stack.
  EXPECT_FALSE(bencode::Decode(Nested(100'000)).ok());
}

// A bencoded string value whose whole encoding is exactly `total` bytes.
std::string StringOfEncodedSize(size_t total) {
  for (size_t digits = 1; digits < 20; ++digits) {
    const size_t len = total - digits - 1;
    const std::string prefix = absl::StrCat(len, ":");
    if (prefix.size() == digits + 1) return prefix + std::string(len, 'x');
  }
  return {};
}

TEST(BencodeLimits, InputSizeAtLimitAndOnePast) {
  const bencode::DecodeLimits limits;
  EXPECT_EQ(limits.max_input_bytes, size_t{64} << 20);
  const std::string at = StringOfEncodedSize(limits.max_input_bytes);
  ASSERT_EQ(at.size(), limits.max_input_bytes);
  EXPECT_TRUE(bencode::Decode(at).ok());
  const std::string past = StringOfEncodedSize(limits.max_input_bytes + 1);
  absl::StatusOr<bencode::Value> v = bencode::Decode(past);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("exceeds limit"));
}

TEST(BencodeLimits, ItemCountAtLimitAndOnePast) {
  EXPECT_EQ(bencode::DecodeLimits{}.max_items, 4'000'000u);
  bencode::DecodeLimits limits;
  limits.max_items = 10;
  auto list_of = [](int ints) {
    std::string s = "l";
    for (int i = 0; i < ints; ++i) s += "i0e";
    return s + "e";
  };
  EXPECT_TRUE(bencode::Decode(list_of(9), limits).ok());  // the list itself is an item
  absl::StatusOr<bencode::Value> v = bencode::Decode(list_of(10), limits);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("too many items"));
}

// ---------------------------------------------------------------------------------------------
// metainfo

std::string Str(const std::string& s) { return absl::StrCat(s.size(), ":", s); }

std::string SingleFileTorrent(const std::string& name, int64_t piece_length, int64_t length,
                              size_t hashes) {
  return absl::StrCat("d4:infod6:lengthi", length, "e4:name", Str(name), "12:piece lengthi",
                      piece_length, "e6:pieces", Str(std::string(20 * hashes, 'h')), "ee");
}

// A multi-file torrent whose files are given as bencoded path lists (each file 1 byte long).
std::string MultiFileTorrent(const std::string& name, const std::vector<std::string>& paths) {
  std::string files = "l";
  for (const std::string& p : paths) absl::StrAppend(&files, "d6:lengthi1e4:path", p, "e");
  files += "e";
  const size_t pieces = (paths.size() + (1 << 20) - 1) >> 20;
  return absl::StrCat("d4:infod5:files", files, "4:name", Str(name),
                      "12:piece lengthi1048576e6:pieces", Str(std::string(20 * pieces, 'h')), "ee");
}

TEST(MetainfoLimits, PieceLengthAtLimitAndOnePast) {
  EXPECT_EQ(kMaxPieceLength, int64_t{512} << 20);
  EXPECT_TRUE(ParseMetainfo(SingleFileTorrent("a", kMaxPieceLength, 1, 1)).ok());
  absl::StatusOr<Metainfo> m = ParseMetainfo(SingleFileTorrent("a", kMaxPieceLength + 1, 1, 1));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("piece length must be <="));
}

TEST(MetainfoLimits, PieceCountAtLimitAndOnePast) {
  EXPECT_EQ(kMaxPieces, int64_t{1} << 24);
  // 2^24 hashes would take 320 MiB, more than bencode accepts at all (64 MiB, so about 3.3 million
  // pieces is the practical cap); the count check itself runs before the hashes are compared, so
  // its boundary shows in which error comes back.
  absl::StatusOr<Metainfo> at = ParseMetainfo(SingleFileTorrent("a", 1, kMaxPieces, 1));
  ASSERT_FALSE(at.ok());
  EXPECT_THAT(at.status().message(), HasSubstr("hashes but the data needs"));
  absl::StatusOr<Metainfo> past = ParseMetainfo(SingleFileTorrent("a", 1, kMaxPieces + 1, 1));
  ASSERT_FALSE(past.ok());
  EXPECT_THAT(past.status().message(), HasSubstr(absl::StrCat("more than ", kMaxPieces)));
}

TEST(MetainfoLimits, FileCountAtLimitAndOnePast) {
  EXPECT_EQ(kMaxFiles, 1'000'000u);
  std::vector<std::string> paths;
  paths.reserve(kMaxFiles + 1);
  for (size_t i = 0; i <= kMaxFiles; ++i)
    paths.push_back(absl::StrCat("l", Str(absl::StrCat(i)), "e"));
  const std::string past = MultiFileTorrent("d", paths);
  paths.pop_back();
  const std::string at = MultiFileTorrent("d", paths);
  paths.clear();
  absl::StatusOr<Metainfo> m = ParseMetainfo(at);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->files.size(), kMaxFiles);
  m = ParseMetainfo(past);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr(absl::StrCat("more than ", kMaxFiles, " files")));
}

TEST(MetainfoLimits, PathLengthAtLimitAndOnePast) {
  EXPECT_EQ(kMaxPathLength, 4096u);
  EXPECT_EQ(kMaxComponentLength, 255u);
  // Components are cut to 255 bytes first, so a long path needs many of them. name (1) + 15 *
  // (1 + 255) + 1 + 254 = 4096; counted as name + one separator per component.
  std::string at = "l";
  for (int i = 0; i < 15; ++i) at += Str(std::string(kMaxComponentLength, 'p'));
  const std::string past = at + Str(std::string(kMaxComponentLength, 'p')) + "e";
  at += Str(std::string(kMaxComponentLength - 1, 'p')) + "e";
  absl::StatusOr<Metainfo> m = ParseMetainfo(MultiFileTorrent("d", {at}));
  EXPECT_TRUE(m.ok()) << m.status();
  m = ParseMetainfo(MultiFileTorrent("d", {past}));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("path longer than"));
  // The same through many short components.
  std::string many = "l";
  for (size_t i = 0; i < kMaxPathLength / 2; ++i) many += Str("c");  // 1 + 2 * 2048 > 4096
  m = ParseMetainfo(MultiFileTorrent("d", {many + "e"}));
  EXPECT_FALSE(m.ok());
  // A single-file name is one component: cut, not refused.
  m = ParseMetainfo(SingleFileTorrent(std::string(kMaxPathLength + 1, 'n'), 16384, 1, 1));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, std::string(kMaxComponentLength, 'n'));
}

// ---------------------------------------------------------------------------------------------
// wire

TEST(WireLimits, MessageLengthAtLimitAndOnePast) {
  const uint32_t small = wire::MaxMessageLen(100);
  EXPECT_EQ(small, 9 + kBlockSize);                         // a piece message with one full block
  EXPECT_EQ(wire::MaxMessageLen(1'000'000), 1 + 125'000u);  // a bitfield of a big torrent
  for (uint32_t max : {small, wire::MaxMessageLen(1'000'000)}) {
    std::vector<uint8_t> buf(4 + size_t{max} + 1, 0);
    auto prefix = [&](uint32_t len) {
      buf[0] = static_cast<uint8_t>(len >> 24);
      buf[1] = static_cast<uint8_t>(len >> 16);
      buf[2] = static_cast<uint8_t>(len >> 8);
      buf[3] = static_cast<uint8_t>(len);
      buf[4] = 20;  // an extension message: any length is fine for the codec
    };
    wire::Message msg;
    prefix(max);
    absl::StatusOr<size_t> n = wire::ParseMessage(buf, max, &msg);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 4 + size_t{max});
    prefix(max + 1);
    // Rejected from the 4-byte prefix alone, before the body arrives.
    EXPECT_FALSE(wire::ParseMessage(absl::MakeConstSpan(buf).subspan(0, 4), max, &msg).ok());
    prefix(0xFFFFFFFFu);
    EXPECT_FALSE(wire::ParseMessage(absl::MakeConstSpan(buf).subspan(0, 4), max, &msg).ok());
  }
}

TEST(WireLimits, BitfieldExactSizeAndSpareBits) {
  Bitfield b(13);  // 2 bytes, 3 spare bits
  EXPECT_TRUE(b.AssignFromWire(std::vector<uint8_t>{0xFF, 0xF8}));
  EXPECT_EQ(b.count(), 13u);
  EXPECT_FALSE(b.AssignFromWire(std::vector<uint8_t>{0xFF, 0xF8, 0x00}));  // one byte long
  EXPECT_FALSE(b.AssignFromWire(std::vector<uint8_t>{0xFF}));              // one byte short
  EXPECT_FALSE(b.AssignFromWire(std::vector<uint8_t>{0xFF, 0xFC}));        // a spare bit set
  EXPECT_FALSE(b.AssignFromWire(std::vector<uint8_t>{0x00, 0x01}));        // the last spare bit
  EXPECT_EQ(b.count(), 13u);  // unchanged by the rejected ones
}

// ---------------------------------------------------------------------------------------------
// Torrent: one engine fed raw wire bytes by hand.

Metainfo MakeMeta(uint32_t pieces, uint32_t piece_length, const std::vector<uint8_t>& payload) {
  Metainfo m;
  m.name = "limits.bin";
  m.piece_length = piece_length;
  m.total_length = int64_t{pieces} * piece_length;
  for (uint32_t i = 0; i < pieces; ++i) {
    m.piece_hashes.push_back(
        Sha1(absl::MakeConstSpan(payload).subspan(size_t{i} * piece_length, piece_length)));
  }
  m.info_hash.fill(0x42);
  m.files.push_back(FileEntry{.path = {}, .length = m.total_length, .offset = 0});
  return m;
}

class Engine {
 public:
  Engine(uint32_t pieces, uint32_t piece_length, TorrentConfig cfg = {})
      : payload_(size_t{pieces} * piece_length),
        meta_(MakeMeta(pieces, piece_length, Fill(payload_))),
        torrent_(meta_, WithId(cfg)) {}

  Torrent& t() { return torrent_; }
  const Metainfo& meta() const { return meta_; }
  const std::vector<uint8_t>& payload() const { return payload_; }
  std::vector<Action>& actions() { return actions_; }

  PeerKey Connect(uint16_t port) {
    const PeerKey key = next_key_++;
    torrent_.HandlePeerConnected(key, PeerAddress{0x7F000001, port}, false, Instant{1000});
    std::vector<uint8_t> hs(wire::kHandshakeSize);
    PeerId id{};
    id.fill(static_cast<uint8_t>(key));
    wire::EncodeHandshake(meta_.info_hash, id, hs.data());
    Send(key, hs);
    return key;
  }

  void Send(PeerKey key, const std::vector<uint8_t>& bytes) {
    const size_t n = torrent_.HandleBytes(key, bytes, Instant{1000});
    if (torrent_.IsConnected(key)) {
      EXPECT_EQ(n, bytes.size());
    }
    Pump();
  }

  // Messages the engine sent to `key` so far.
  std::vector<wire::Message> Sent(PeerKey key) {
    std::vector<wire::Message> out;
    const std::vector<uint8_t>& s = sent_[key];
    size_t off = wire::kHandshakeSize;
    while (off < s.size()) {
      wire::Message m;
      absl::StatusOr<size_t> n =
          wire::ParseMessage(absl::MakeConstSpan(s).subspan(off), 1 << 20, &m);
      if (!n.ok() || *n == 0) break;
      out.push_back(m);
      off += *n;
    }
    return out;
  }

  std::vector<wire::Message> SentRequests(PeerKey key) {
    std::vector<wire::Message> out;
    for (const wire::Message& m : Sent(key))
      if (m.type == wire::MsgType::kRequest) out.push_back(m);
    return out;
  }

  bool ClosedFor(PeerKey key, CloseReason reason) const {
    for (const Action& a : actions_)
      if (a.type == Action::Type::kClose && a.peer == key && a.reason == reason) return true;
    return false;
  }

 private:
  static const std::vector<uint8_t>& Fill(std::vector<uint8_t>& p) {
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 7 + (i >> 11));
    return p;
  }
  static TorrentConfig WithId(TorrentConfig cfg) {
    cfg.self_id.fill(0xEE);
    return cfg;
  }

  void Pump() {
    for (;;) {
      std::vector<Action> batch;
      torrent_.TakeActions(&batch);
      if (batch.empty()) return;
      for (Action& a : batch) {
        if (a.type == Action::Type::kFlush) {
          for (;;) {
            absl::Span<const uint8_t> out = torrent_.NextSend(a.peer);
            if (out.empty()) break;
            sent_[a.peer].insert(sent_[a.peer].end(), out.begin(), out.end());
            torrent_.HandleSent(a.peer, out.size(), Instant{1000});
          }
        }
        actions_.push_back(std::move(a));
      }
    }
  }

  std::vector<uint8_t> payload_;
  Metainfo meta_;
  Torrent torrent_;
  std::vector<Action> actions_;
  std::map<PeerKey, std::vector<uint8_t>> sent_;
  PeerKey next_key_ = 1;
};

std::vector<uint8_t> Simple(wire::MsgType type) {
  std::vector<uint8_t> b(wire::kSimpleSize);
  wire::EncodeSimple(type, b.data());
  return b;
}

std::vector<uint8_t> Request(uint32_t index, uint32_t begin, uint32_t length) {
  std::vector<uint8_t> b(wire::kRequestSize);
  wire::EncodeRequest(index, begin, length, b.data());
  return b;
}

std::vector<uint8_t> Piece(uint32_t index, uint32_t begin, absl::Span<const uint8_t> data) {
  std::vector<uint8_t> b(wire::kPieceHeaderSize + data.size());
  wire::EncodePieceHeader(index, begin, static_cast<uint32_t>(data.size()), b.data());
  std::memcpy(b.data() + wire::kPieceHeaderSize, data.data(), data.size());
  return b;
}

std::vector<uint8_t> RawBitfield(const std::vector<uint8_t>& bits) {
  std::vector<uint8_t> b(wire::kBitfieldHeaderSize + bits.size());
  wire::EncodeBitfield(bits, b.data());
  return b;
}

std::vector<uint8_t> Cat(std::vector<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TorrentLimits, BitfieldOfExactSizeIsKept) {
  Engine e(13, kBlockSize);
  const PeerKey k = e.Connect(7001);
  e.Send(k, RawBitfield({0xFF, 0xF0}));
  EXPECT_TRUE(e.t().IsConnected(k));
}

TEST(TorrentLimits, BitfieldOneByteTooLongClosesPeer) {
  Engine e(13, kBlockSize);
  const PeerKey k = e.Connect(7001);
  e.Send(k, RawBitfield({0xFF, 0xF0, 0x00}));
  EXPECT_FALSE(e.t().IsConnected(k));
  EXPECT_TRUE(e.ClosedFor(k, CloseReason::kProtocolError));
  EXPECT_EQ(e.t().stats().peers_closed_for_protocol_errors, 1u);
}

TEST(TorrentLimits, BitfieldWithSpareBitClosesPeer) {
  Engine e(13, kBlockSize);
  const PeerKey k = e.Connect(7001);
  e.Send(k, RawBitfield({0x00, 0x04}));
  EXPECT_TRUE(e.ClosedFor(k, CloseReason::kProtocolError));
}

TEST(TorrentLimits, MessageOverMaxLengthClosesPeer) {
  Engine e(13, kBlockSize);
  const PeerKey k = e.Connect(7001);
  e.Send(k, {0xFF, 0xFF, 0xFF, 0xFF});  // only the prefix: no need to wait for 4 GiB
  EXPECT_TRUE(e.ClosedFor(k, CloseReason::kProtocolError));
  // A piece message with a block one byte over kBlockSize is over the limit too.
  const PeerKey k2 = e.Connect(7002);
  std::vector<uint8_t> block(kBlockSize + 1, 0);
  e.Send(k2, Piece(0, 0, block));
  EXPECT_TRUE(e.ClosedFor(k2, CloseReason::kProtocolError));
}

// A seed with `pieces` pieces of 4 blocks and a peer that is interested and unchoked.
struct SeedWithPeer {
  explicit SeedWithPeer(TorrentConfig cfg = {}) : e(8, 4 * kBlockSize, cfg) {
    Bitfield all(8);
    all.SetAll();
    e.t().SetHave(all);
    k = e.Connect(7001);
    e.Send(k, Simple(wire::MsgType::kInterested));
  }
  Engine e;
  PeerKey k = 0;
};

TEST(TorrentLimits, RequestOfOneBlockIsServed) {
  SeedWithPeer s;
  s.e.Send(s.k, Request(0, 0, kBlockSize));
  EXPECT_TRUE(s.e.t().IsConnected(s.k));
  bool read = false;
  for (const Action& a : s.e.actions())
    if (a.type == Action::Type::kReadBlock && a.length == kBlockSize) read = true;
  EXPECT_TRUE(read);
}

TEST(TorrentLimits, RequestOverOneBlockClosesPeer) {
  SeedWithPeer s;
  s.e.Send(s.k, Request(0, 0, kBlockSize + 1));
  EXPECT_TRUE(s.e.ClosedFor(s.k, CloseReason::kProtocolError));
}

TEST(TorrentLimits, RequestOutOfRangeClosesPeer) {
  for (auto [index, begin, length] : {std::tuple<uint32_t, uint32_t, uint32_t>{8, 0, kBlockSize},
                                      {0, 4 * kBlockSize - 1, 2},
                                      {0, 0xFFFFFFFFu, kBlockSize},
                                      {0, 0, 0}}) {
    SeedWithPeer s;
    s.e.Send(s.k, Request(index, begin, length));
    EXPECT_TRUE(s.e.ClosedFor(s.k, CloseReason::kProtocolError))
        << index << " " << begin << " " << length;
  }
}

TEST(TorrentLimits, QueuedRequestsAtLimitAndOnePast) {
  const uint32_t max = TorrentConfig{}.peer_requests_queued_max;
  EXPECT_EQ(max, 2000u);
  auto flood = [](uint32_t n) {
    std::vector<std::vector<uint8_t>> parts;
    for (uint32_t i = 0; i < n; ++i)
      parts.push_back(Request(i % 8, (i / 8 % 4) * kBlockSize, kBlockSize));
    return Cat(std::move(parts));
  };
  {
    // All in one read: the queue fills before any request turns into a disk read.
    SeedWithPeer s;
    s.e.Send(s.k, flood(max));
    EXPECT_TRUE(s.e.t().IsConnected(s.k));
  }
  {
    SeedWithPeer s;
    s.e.Send(s.k, flood(max + 1));
    EXPECT_FALSE(s.e.t().IsConnected(s.k));
    EXPECT_TRUE(s.e.ClosedFor(s.k, CloseReason::kProtocolError));
  }
  {
    // A peer that never reads: reads stop at reads_per_peer_max, and the queue still caps it.
    SeedWithPeer s;
    for (uint32_t i = 0; i < 30 && s.e.t().IsConnected(s.k); ++i) s.e.Send(s.k, flood(100));
    EXPECT_TRUE(s.e.ClosedFor(s.k, CloseReason::kProtocolError));
    uint32_t reads = 0;
    for (const Action& a : s.e.actions()) reads += a.type == Action::Type::kReadBlock;
    EXPECT_EQ(reads, TorrentConfig{}.reads_per_peer_max);
  }
}

TEST(TorrentLimits, PieceOutOfRangeClosesPeer) {
  Engine e(8, 4 * kBlockSize);
  const PeerKey k = e.Connect(7001);
  std::vector<uint8_t> block(kBlockSize, 0);
  e.Send(k, Piece(8, 0, block));
  EXPECT_TRUE(e.ClosedFor(k, CloseReason::kProtocolError));
}

TEST(TorrentLimits, HaveOutOfRangeClosesPeer) {
  Engine e(8, 4 * kBlockSize);
  const PeerKey ok = e.Connect(7001);
  std::vector<uint8_t> have(wire::kHaveSize);
  wire::EncodeHave(7, have.data());
  e.Send(ok, have);
  EXPECT_TRUE(e.t().IsConnected(ok));
  const PeerKey bad = e.Connect(7002);
  wire::EncodeHave(8, have.data());
  e.Send(bad, have);
  EXPECT_TRUE(e.ClosedFor(bad, CloseReason::kProtocolError));
}

// A block a peer was never asked for must not go into a piece being fetched from another peer:
// that let a hostile peer poison pieces and get honest peers blamed for the hash failures.
TEST(TorrentLimits, UnrequestedBlockIsNotWrittenIntoAPiece) {
  TorrentConfig cfg;
  cfg.requests_per_peer_max = 1;
  cfg.pieces_in_flight_max = 1;
  Engine e(2, 2 * kBlockSize, cfg);
  std::vector<uint8_t> all = RawBitfield({0xC0});
  const PeerKey honest = e.Connect(7001);
  e.Send(honest, Cat({all, Simple(wire::MsgType::kUnchoke)}));
  const PeerKey evil = e.Connect(7002);
  e.Send(evil, Cat({all, Simple(wire::MsgType::kUnchoke)}));
  std::vector<wire::Message> honest_reqs = e.SentRequests(honest);
  ASSERT_EQ(honest_reqs.size(), 1u);
  const wire::Message r = honest_reqs[0];
  for (const wire::Message& m : e.SentRequests(evil)) {
    ASSERT_FALSE(m.index == r.index && m.begin == r.begin) << "evil peer was asked for it too";
  }
  // The evil peer answers the honest peer's request first, with garbage.
  std::vector<uint8_t> garbage(r.length, 0xAB);
  e.Send(evil, Piece(r.index, r.begin, garbage));
  EXPECT_TRUE(e.t().IsConnected(evil));  // tolerated (it may be a late block), but wasted
  EXPECT_EQ(e.t().stats().wasted_bytes, static_cast<int64_t>(r.length));
  // Now everyone answers what they were asked, with the right data, until the piece is hashed.
  const std::vector<uint8_t>& payload = e.payload();
  std::vector<size_t> served(3, 0);
  const Action* hash = nullptr;
  for (int round = 0; round < 10 && hash == nullptr; ++round) {
    for (PeerKey k : {honest, evil}) {
      std::vector<wire::Message> reqs = e.SentRequests(k);
      for (size_t i = served[k]; i < reqs.size(); ++i) {
        const size_t off = size_t{reqs[i].index} * e.meta().piece_length + reqs[i].begin;
        e.Send(k, Piece(reqs[i].index, reqs[i].begin,
                        absl::MakeConstSpan(payload).subspan(off, reqs[i].length)));
      }
      served[k] = reqs.size();
    }
    for (const Action& a : e.actions())
      if (a.type == Action::Type::kHashPiece && a.piece == r.index) hash = &a;
  }
  ASSERT_NE(hash, nullptr);
  const size_t start = size_t{r.index} * e.meta().piece_length;
  const absl::Span<const uint8_t> hashed = hash->buffer.bytes();
  EXPECT_TRUE(std::equal(hashed.begin(), hashed.end(), payload.begin() + start))
      << "an unrequested block was mixed into the piece";
}

TEST(TorrentLimits, PeerCandidatesAtLimitAndOnePast) {
  EXPECT_EQ(kMaxPeerCandidates, 20'000u);
  TorrentConfig cfg;
  cfg.connections_max = 0;  // keep every candidate undialled
  Engine e(8, 4 * kBlockSize, cfg);
  // A hostile tracker's stream of made-up addresses, 10 000 per announce.
  uint32_t ip = 0x0A000000;
  auto announce = [&](size_t n) {
    std::vector<PeerAddress> peers;
    for (size_t i = 0; i < n; ++i) peers.push_back(PeerAddress{ip++, 6881});
    e.t().AddPeerCandidates(peers, Instant{1000});
  };
  announce(kMaxPeerCandidates);
  EXPECT_EQ(e.t().num_candidates(), kMaxPeerCandidates);
  announce(1);
  EXPECT_EQ(e.t().num_candidates(), kMaxPeerCandidates);
  for (int i = 0; i < 20; ++i) announce(10'000);
  EXPECT_EQ(e.t().num_candidates(), kMaxPeerCandidates);
}

TEST(TorrentLimits, FullCandidateListMakesRoomByDroppingFailedPeers) {
  Engine e(8, 4 * kBlockSize);
  std::vector<PeerAddress> peers;
  for (uint32_t i = 0; i < kMaxPeerCandidates; ++i) peers.push_back(PeerAddress{0x0A000000 + i, 1});
  e.t().AddPeerCandidates(peers, Instant{1000});
  std::vector<Action> actions;
  e.t().TakeActions(&actions);
  size_t failed = 0;
  for (const Action& a : actions) {
    if (a.type != Action::Type::kConnect) continue;
    e.t().HandleConnectFailed(a.address, Instant{1000});
    ++failed;
  }
  ASSERT_GT(failed, 0u);
  e.t().TakeActions(&actions);
  const PeerAddress fresh{0x0B000001, 2};
  e.t().AddPeerCandidates(absl::MakeConstSpan(&fresh, 1), Instant{1000});
  EXPECT_EQ(e.t().num_candidates(), kMaxPeerCandidates - failed + 1);
}

// The piece memory budget holds for any piece length: io/ gives each shard budget / piece length
// / shards pieces, at least one, and the shared PieceMemory lets exactly one buffer larger than
// the whole budget exist (it used to be at least 4 pieces per shard: 4 GiB for two shards of
// 512 MiB pieces under a 32 MiB budget).
TEST(TorrentLimits, PieceMemoryHoldsForAnyPieceLength) {
  constexpr int64_t kBudget = int64_t{32} << 20;
  EXPECT_EQ(PiecesInFlightMax(kBudget, int64_t{1} << 20, 2), 16u);
  EXPECT_EQ(PiecesInFlightMax(kBudget, int64_t{16} << 20, 2), 1u);
  EXPECT_EQ(PiecesInFlightMax(kBudget, int64_t{512} << 20, 2), 1u);
  EXPECT_EQ(PiecesInFlightMax(kBudget, int64_t{512} << 20, 1), 1u);

  LocalPieceMemory memory(kBudget);
  const int64_t huge = int64_t{512} << 20;
  ASSERT_TRUE(memory.TryReserve(huge));  // one oversized piece: allowed alone
  EXPECT_FALSE(memory.TryReserve(huge));
  EXPECT_FALSE(memory.TryReserve(1 << 20));
  EXPECT_TRUE(memory.wanted());
  memory.Release(huge);
  ASSERT_TRUE(memory.TryReserve(int64_t{16} << 20));
  EXPECT_FALSE(memory.wanted());
  ASSERT_TRUE(memory.TryReserve(int64_t{16} << 20));
  EXPECT_FALSE(memory.TryReserve(1));  // the budget is full
  EXPECT_LE(memory.used(), std::max(kBudget, huge));
}

}  // namespace
}  // namespace torrenty::engine
