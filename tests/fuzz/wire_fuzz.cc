// Fuzzes the peer wire protocol at two levels.
//
// 1. The framer: the stream is parsed by wire::ParseMessage once as a whole and once as it would
//    arrive from a socket, in chunks whose sizes come from the input header. Both must yield the
//    same messages and the same error; every message must consume exactly its length prefix and
//    re-encode (with the wire encoders) to the bytes it was parsed from.
// 2. The peer state machine (with and without the BEP 6 Fast extension): an engine::Torrent over a
// small synthetic torrent whose data is all
//    zeros (so the fuzzer can produce valid blocks) is fed the stream as one peer's bytes, after a
//    valid handshake, in the same chunks. Actions are executed synchronously (or one chunk late)
//    like io/ would; every byte the Torrent sends back must itself be a well-formed stream of
//    in-range messages. Closing the peer is fine; crashing or breaking an invariant is not.
//
// Input layout: kHeaderSize header bytes, then the peer's byte stream.
//   [0] flags: bits 0-1 torrent geometry; bits 2-3 pieces we have (none, all, even ones, first);
//       bit 4 outgoing connection; bit 5 the stream brings its own handshake; bit 6 a second,
//       well-behaved seeding peer is connected too; bit 7 disk and hash results arrive one chunk
//       late.
//   [1] max_message_len for the framer test; its low bit sets the BEP 6 Fast bit in the
//       handshake made for the stream (bit 5 of flags clear).
//   [2..9] chunk sizes (1 + b*b bytes), also used to advance the clock.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/sha1.h"
#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace engine = torrenty::engine;
namespace wire = torrenty::engine::wire;
using Bytes = absl::Span<const uint8_t>;

constexpr size_t kHeaderSize = 10;
constexpr size_t kNumChunkSizes = 8;

uint32_t LoadBE32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

class Chunker {
 public:
  explicit Chunker(const uint8_t* sizes) : sizes_(sizes) {}
  size_t Next() {
    const size_t b = sizes_[i_++ % kNumChunkSizes];
    return 1 + b * b;
  }
  // Milliseconds to advance the clock by after the last chunk.
  int64_t LastDelayMs() const { return int64_t{sizes_[(i_ + 7) % kNumChunkSizes]} * 250; }

 private:
  const uint8_t* sizes_;
  size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Part 1: the framer.

struct Parsed {
  bool error = false;
  size_t offset = 0;  // where in the stream the message (or the error) starts
  size_t consumed = 0;
  wire::Message msg;
  friend bool operator==(const Parsed& a, const Parsed& b) {
    return a.error == b.error && a.offset == b.offset && a.consumed == b.consumed &&
           a.msg.type == b.msg.type && a.msg.raw_id == b.msg.raw_id && a.msg.index == b.msg.index &&
           a.msg.begin == b.msg.begin && a.msg.length == b.msg.length && a.msg.port == b.msg.port &&
           a.msg.payload.data() == b.msg.payload.data() &&
           a.msg.payload.size() == b.msg.payload.size();
  }
};

// Re-encodes a parsed message; it must reproduce the original bytes exactly.
void CheckReencode(const wire::Message& m, Bytes original) {
  std::vector<uint8_t> out(original.size() + 32);
  size_t n = 0;
  switch (m.type) {
    case wire::MsgType::kChoke:
    case wire::MsgType::kUnchoke:
    case wire::MsgType::kInterested:
    case wire::MsgType::kNotInterested:
    case wire::MsgType::kHaveAll:
    case wire::MsgType::kHaveNone:
      n = wire::EncodeSimple(m.type, out.data());
      break;
    case wire::MsgType::kKeepAlive:
      n = wire::EncodeKeepAlive(out.data());
      break;
    case wire::MsgType::kHave:
      n = wire::EncodeHave(m.index, out.data());
      break;
    case wire::MsgType::kBitfield:
      n = wire::EncodeBitfield(m.payload, out.data());
      break;
    case wire::MsgType::kRequest:
      n = wire::EncodeRequest(m.index, m.begin, m.length, out.data());
      break;
    case wire::MsgType::kCancel:
      n = wire::EncodeCancel(m.index, m.begin, m.length, out.data());
      break;
    case wire::MsgType::kPiece:
      FUZZ_CHECK(m.length == m.payload.size());
      n = wire::EncodePieceHeader(m.index, m.begin, m.length, out.data());
      if (!m.payload.empty()) std::memcpy(out.data() + n, m.payload.data(), m.payload.size());
      n += m.payload.size();
      break;
    case wire::MsgType::kPort:
      n = wire::EncodePort(m.port, out.data());
      break;
    case wire::MsgType::kSuggest:
      n = wire::EncodeSuggest(m.index, out.data());
      break;
    case wire::MsgType::kAllowedFast:
      n = wire::EncodeAllowedFast(m.index, out.data());
      break;
    case wire::MsgType::kRejectRequest:
      n = wire::EncodeReject(m.index, m.begin, m.length, out.data());
      break;
    case wire::MsgType::kUnknown: {
      FUZZ_CHECK(m.raw_id > 9 && (m.raw_id < 13 || m.raw_id > 17));
      const uint32_t len = static_cast<uint32_t>(1 + m.payload.size());
      out[0] = static_cast<uint8_t>(len >> 24);
      out[1] = static_cast<uint8_t>(len >> 16);
      out[2] = static_cast<uint8_t>(len >> 8);
      out[3] = static_cast<uint8_t>(len);
      out[4] = m.raw_id;
      if (!m.payload.empty()) std::memcpy(out.data() + 5, m.payload.data(), m.payload.size());
      n = 5 + m.payload.size();
      break;
    }
  }
  FUZZ_CHECK(n == original.size());
  FUZZ_CHECK(std::memcmp(out.data(), original.data(), n) == 0);
}

// Parses stream[0, available) from `*off` until it needs more bytes or fails. Returns false on
// error (parsing must stop there).
bool ParseAvailable(Bytes stream, size_t available, uint32_t max_len, size_t* off,
                    std::vector<Parsed>* out) {
  while (true) {
    const Bytes in = stream.subspan(*off, available - *off);
    Parsed p;
    p.offset = *off;
    absl::StatusOr<size_t> n = wire::ParseMessage(in, max_len, &p.msg);
    if (!n.ok()) {
      p.error = true;
      // The oversize check needs only the prefix; any other error needs the whole message.
      FUZZ_CHECK(in.size() >= 4);
      out->push_back(p);
      return false;
    }
    if (*n == 0) {
      if (in.size() >= 4) {
        const uint32_t len = LoadBE32(in.data());
        FUZZ_CHECK(len <= max_len);
        FUZZ_CHECK(in.size() < size_t{4} + len);
      }
      return true;
    }
    FUZZ_CHECK(*n <= in.size());
    FUZZ_CHECK(*n == size_t{4} + LoadBE32(in.data()));
    FUZZ_CHECK(*n - 4 <= max_len);
    if (!p.msg.payload.empty()) {
      FUZZ_CHECK(p.msg.payload.data() >= in.data() &&
                 p.msg.payload.data() + p.msg.payload.size() <= in.data() + *n);
    }
    CheckReencode(p.msg, in.subspan(0, *n));
    p.consumed = *n;
    out->push_back(p);
    *off += *n;
  }
}

void FuzzFramer(const uint8_t* header, Bytes stream) {
  uint32_t max_len;
  if (header[1] < 64) {
    max_len = header[1];
  } else if (header[1] == 255) {
    max_len = std::numeric_limits<uint32_t>::max();
  } else {
    max_len = wire::MaxMessageLen(uint32_t{header[1]} * 997);
  }

  std::vector<Parsed> whole;
  size_t off = 0;
  ParseAvailable(stream, stream.size(), max_len, &off, &whole);

  std::vector<Parsed> chunked;
  Chunker chunker(header + 2);
  size_t available = 0;
  off = 0;
  while (true) {
    available = std::min(stream.size(), available + chunker.Next());
    if (!ParseAvailable(stream, available, max_len, &off, &chunked)) break;
    if (available == stream.size()) break;
  }
  FUZZ_CHECK(whole == chunked);
}

// ---------------------------------------------------------------------------------------------
// Part 2: the peer state machine.

struct Geometry {
  int64_t piece_length;
  int64_t total_length;
};
constexpr std::array<Geometry, 4> kGeometries = {{
    {16 * 1024, 3 * 16 * 1024 + 100},    // one block per piece, short last piece
    {32 * 1024, 2 * 32 * 1024 + 16391},  // two blocks per piece
    {64, 9 * 64 + 3},                    // pieces smaller than a block
    {16 * 1024, 99 * 16 * 1024 + 1},     // 100 pieces: a 13-byte bitfield with spare bits
}};

// The torrent's data is all zeros, so valid blocks are easy for the fuzzer to produce.
const engine::Metainfo& GetMetainfo(size_t geometry) {
  static std::array<engine::Metainfo, kGeometries.size()>* metas = [] {
    auto* all = new std::array<engine::Metainfo, kGeometries.size()>();
    for (size_t g = 0; g < kGeometries.size(); ++g) {
      engine::Metainfo& m = (*all)[g];
      m.name = "fuzz.bin";
      m.piece_length = kGeometries[g].piece_length;
      m.total_length = kGeometries[g].total_length;
      const std::vector<uint8_t> zeros(static_cast<size_t>(m.piece_length), 0);
      for (int64_t off = 0; off < m.total_length; off += m.piece_length) {
        const int64_t len = std::min(m.piece_length, m.total_length - off);
        m.piece_hashes.push_back(
            engine::Sha1(absl::MakeConstSpan(zeros).subspan(0, static_cast<size_t>(len))));
      }
      m.info_hash.fill(static_cast<uint8_t>(0xA0 + g));
      m.files.push_back(engine::FileEntry{.path = {}, .length = m.total_length, .offset = 0});
    }
    return all;
  }();
  return (*metas)[geometry];
}

constexpr engine::PeerKey kFuzzPeer = 1;
constexpr engine::PeerKey kHelperPeer = 2;

// Checks that what the Torrent sends to a peer is a well-formed, in-range stream.
class OutgoingTap {
 public:
  explicit OutgoingTap(const engine::Metainfo& meta) : meta_(meta) {}
  // Whether the peer's handshake set the BEP 6 bit (Fast messages may only go to such a peer).
  void set_fast(bool fast) { fast_ = fast; }

  void Feed(Bytes bytes, const engine::Bitfield& have) {
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    size_t off = 0;
    if (!saw_handshake_) {
      if (buf_.size() < wire::kHandshakeSize) return;
      absl::StatusOr<wire::Handshake> hs = wire::ParseHandshake(buf_);
      FUZZ_CHECK(hs.ok());
      FUZZ_CHECK(hs->info_hash == meta_.info_hash);
      FUZZ_CHECK(wire::SupportsFast(hs->reserved));
      saw_handshake_ = true;
      off = wire::kHandshakeSize;
    }
    while (true) {
      wire::Message m;
      absl::StatusOr<size_t> n = wire::ParseMessage(absl::MakeConstSpan(buf_).subspan(off),
                                                    wire::MaxMessageLen(meta_.num_pieces()), &m);
      FUZZ_CHECK(n.ok());
      if (*n == 0) break;
      off += *n;
      CheckMessage(m, have);
    }
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(off));
  }

 private:
  bool InPiece(uint32_t piece, uint32_t begin, uint64_t length) const {
    return piece < meta_.num_pieces() && length > 0 && length <= engine::kBlockSize &&
           begin + length <= meta_.PieceSize(piece);
  }

  void CheckMessage(const wire::Message& m, const engine::Bitfield& have) {
    switch (m.type) {
      case wire::MsgType::kHave:
        FUZZ_CHECK(m.index < meta_.num_pieces());
        break;
      case wire::MsgType::kBitfield: {
        FUZZ_CHECK(!saw_message_);  // only right after the handshake
        engine::Bitfield bits(meta_.num_pieces());
        FUZZ_CHECK(bits.AssignFromWire(m.payload));
        break;
      }
      case wire::MsgType::kHaveAll:
      case wire::MsgType::kHaveNone:
        FUZZ_CHECK(fast_);
        FUZZ_CHECK(!saw_message_);  // only right after the handshake
        FUZZ_CHECK(m.type == wire::MsgType::kHaveAll ? have.all() : have.none());
        break;
      case wire::MsgType::kAllowedFast:
        FUZZ_CHECK(fast_);
        FUZZ_CHECK(have.Get(m.index));
        break;
      case wire::MsgType::kSuggest:
        FUZZ_CHECK(false);  // we never suggest
        break;
      case wire::MsgType::kRejectRequest:
        FUZZ_CHECK(fast_);
        FUZZ_CHECK(InPiece(m.index, m.begin, m.length));
        break;
      case wire::MsgType::kRequest:
      case wire::MsgType::kCancel:
        FUZZ_CHECK(InPiece(m.index, m.begin, m.length));
        break;
      case wire::MsgType::kPiece:
        FUZZ_CHECK(InPiece(m.index, m.begin, m.length));
        FUZZ_CHECK(have.Get(m.index));
        break;
      case wire::MsgType::kUnknown:
        FUZZ_CHECK(false);  // we never send extension messages
        break;
      default:
        break;
    }
    saw_message_ = true;
  }

  const engine::Metainfo& meta_;
  bool saw_handshake_ = false;
  bool saw_message_ = false;
  bool fast_ = false;
  std::vector<uint8_t> buf_;
};

class Driver {
 public:
  Driver(const engine::Metainfo& meta, bool deferred)
      : meta_(meta), torrent_(meta, MakeConfig()), deferred_(deferred) {
    taps_.emplace(kFuzzPeer, OutgoingTap(meta));
    taps_.emplace(kHelperPeer, OutgoingTap(meta));
  }

  engine::Torrent& torrent() { return torrent_; }
  engine::Instant now() const { return now_; }
  void Advance(int64_t ms) { now_.ms += ms; }

  // Drains and executes actions until the Torrent is quiet.
  void Pump(bool run_deferred) {
    if (run_deferred) RunDisk();
    for (int round = 0; round < 10'000; ++round) {
      std::vector<engine::Action> actions;
      torrent_.TakeActions(&actions);
      if (actions.empty()) return;
      for (engine::Action& a : actions) Execute(std::move(a));
      if (!deferred_) RunDisk();
    }
    FUZZ_CHECK(false);  // the Torrent keeps producing actions without new input
  }

  // Runs queued hash/write/read work.
  void RunDisk() {
    while (!disk_.empty()) {
      engine::Action a = std::move(disk_.front());
      disk_.pop_front();
      switch (a.type) {
        case engine::Action::Type::kHashPiece: {
          FUZZ_CHECK(a.buffer.size() == meta_.PieceSize(a.piece));
          const bool ok = engine::Sha1(a.buffer.bytes()) == meta_.piece_hashes[a.piece];
          // A verdict from hashing blocks as they arrived must agree with the whole buffer.
          FUZZ_CHECK(a.verdict == engine::Action::Verdict::kUnknown ||
                     (a.verdict == engine::Action::Verdict::kMatched) == ok);
          torrent_.HandleHashResult(a.piece, ok, std::move(a.buffer), now_);
          break;
        }
        case engine::Action::Type::kWritePiece:
          FUZZ_CHECK(a.buffer.size() == meta_.PieceSize(a.piece));
          FUZZ_CHECK(engine::Sha1(a.buffer.bytes()) == meta_.piece_hashes[a.piece]);
          torrent_.HandlePieceWritten(a.piece, absl::OkStatus(), std::move(a.buffer), now_);
          break;
        case engine::Action::Type::kReadBlock: {
          const std::vector<uint8_t> block(a.length, 0);
          torrent_.HandleBlockRead(a.peer, a.piece, a.begin, block, absl::OkStatus(), now_);
          break;
        }
        default:
          FUZZ_CHECK(false);
      }
    }
  }

  bool closed(engine::PeerKey key) const { return closed_.count(key) > 0; }
  void set_fast(engine::PeerKey key, bool fast) { taps_.at(key).set_fast(fast); }

 private:
  static engine::TorrentConfig MakeConfig() {
    engine::TorrentConfig config;
    const char id[] = "-TY0001-fuzzfuzzfuzz";
    std::memcpy(config.self_id.data(), id, 20);
    config.listen_port = 6881;
    config.seed = 42;
    return config;
  }

  void Execute(engine::Action a) {
    switch (a.type) {
      case engine::Action::Type::kFlush: {
        for (int i = 0; i < 1000; ++i) {
          const Bytes out = torrent_.NextSend(a.peer);
          if (out.empty()) return;
          auto tap = taps_.find(a.peer);
          FUZZ_CHECK(tap != taps_.end());
          tap->second.Feed(out, torrent_.have());
          torrent_.HandleSent(a.peer, out.size(), now_);
        }
        FUZZ_CHECK(false);  // NextSend never ran dry
        break;
      }
      case engine::Action::Type::kClose:
        FUZZ_CHECK(!torrent_.IsConnected(a.peer));
        closed_.insert(a.peer);
        if (std::getenv("TORRENTY_FUZZ_VERBOSE") != nullptr) {
          std::fprintf(stderr, "wire_fuzz: closed peer %u: %s %s\n", a.peer,
                       engine::CloseReasonName(a.reason), a.message.c_str());
        }
        break;
      case engine::Action::Type::kConnect:
        torrent_.HandleConnectFailed(a.address, now_);
        break;
      case engine::Action::Type::kHashPiece:
      case engine::Action::Type::kWritePiece:
        FUZZ_CHECK(a.piece < meta_.num_pieces());
        FUZZ_CHECK(!torrent_.have().Get(a.piece));
        disk_.push_back(std::move(a));
        break;
      case engine::Action::Type::kReadBlock:
        FUZZ_CHECK(torrent_.have().Get(a.piece));
        FUZZ_CHECK(a.length > 0 && a.length <= engine::kBlockSize);
        FUZZ_CHECK(uint64_t{a.begin} + a.length <= meta_.PieceSize(a.piece));
        disk_.push_back(std::move(a));
        break;
      case engine::Action::Type::kPieceDone:
        FUZZ_CHECK(torrent_.have().Get(a.piece));
        break;
      case engine::Action::Type::kComplete:
        FUZZ_CHECK(torrent_.complete());
        break;
      case engine::Action::Type::kNeedPeers:
      case engine::Action::Type::kLog:
      case engine::Action::Type::kWebPieceHashed:
        break;
      case engine::Action::Type::kFatal:
        FUZZ_CHECK(false);  // we never report disk errors
        break;
      case engine::Action::Type::kReleaseBlock:
        FUZZ_CHECK(false);  // blocks are answered by copy here: nothing is lent
        break;
      case engine::Action::Type::kHashChunk:
        FUZZ_CHECK(false);  // the fuzzed engine hashes on arrival, never in chunks
        break;
    }
  }

  const engine::Metainfo& meta_;
  engine::Torrent torrent_;
  bool deferred_;
  engine::Instant now_{1'000'000};
  std::deque<engine::Action> disk_;
  std::map<engine::PeerKey, OutgoingTap> taps_;
  std::set<engine::PeerKey> closed_;
};

std::vector<uint8_t> MakeHandshake(const engine::Metainfo& meta, uint8_t tag, bool fast) {
  std::vector<uint8_t> hs(wire::kHandshakeSize);
  engine::PeerId id{};
  const char prefix[] = "-XX0001-";
  std::memcpy(id.data(), prefix, 8);
  id[19] = tag;
  std::array<uint8_t, 8> reserved{};
  if (fast) reserved[wire::kFastReservedByte] |= wire::kFastReservedBit;
  wire::EncodeHandshake(meta.info_hash, id, reserved, hs.data());
  return hs;
}

void FuzzTorrent(const uint8_t* header, Bytes stream) {
  const uint8_t flags = header[0];
  const engine::Metainfo& meta = GetMetainfo(flags & 3);
  Driver d(meta, (flags & 0x80) != 0);
  engine::Torrent& t = d.torrent();

  engine::Bitfield have(meta.num_pieces());
  switch ((flags >> 2) & 3) {
    case 0:
      break;
    case 1:
      have.SetAll();
      break;
    case 2:
      for (uint32_t i = 0; i < meta.num_pieces(); i += 2) have.Set(i);
      break;
    case 3:
      have.Set(0);
      break;
  }
  t.SetHave(have);

  if (flags & 0x40) {
    // A seeder that unchokes us: it competes with the fuzzed peer for our requests (endgame,
    // cancels) and hears our haves.
    t.HandlePeerConnected(kHelperPeer, engine::PeerAddress{0x0A000002, 6881}, true, d.now());
    d.Pump(true);
    std::vector<uint8_t> bytes = MakeHandshake(meta, 2, /*fast=*/false);
    engine::Bitfield all(meta.num_pieces());
    all.SetAll();
    std::vector<uint8_t> msg(5 + all.bytes().size());
    wire::EncodeBitfield(all.bytes(), msg.data());
    bytes.insert(bytes.end(), msg.begin(), msg.end());
    msg.resize(5);
    wire::EncodeSimple(wire::MsgType::kUnchoke, msg.data());
    bytes.insert(bytes.end(), msg.begin(), msg.end());
    const size_t n = t.HandleBytes(kHelperPeer, bytes, d.now());
    FUZZ_CHECK(n <= bytes.size());
    d.Pump(false);
  }

  t.HandlePeerConnected(kFuzzPeer, engine::PeerAddress{0x0A000001, 51413}, (flags & 0x10) != 0,
                        d.now());
  d.Pump(true);

  std::vector<uint8_t> peer_bytes;
  // The Fast extension (BEP 6) is negotiated when the handshake's reserved bit says so: the
  // low bit of header[1] for our handshake, or whatever the stream's own handshake holds.
  if (!(flags & 0x20)) peer_bytes = MakeHandshake(meta, 1, (header[1] & 1) != 0);
  peer_bytes.insert(peer_bytes.end(), stream.begin(), stream.end());
  if (peer_bytes.size() >= wire::kHandshakeSize) {
    absl::StatusOr<wire::Handshake> hs = wire::ParseHandshake(peer_bytes);
    d.set_fast(kFuzzPeer, hs.ok() && wire::SupportsFast(hs->reserved));
  }

  Chunker chunker(header + 2);
  std::vector<uint8_t> pending;  // received but not yet consumed, as io/ keeps it
  size_t delivered = 0;
  while (delivered < peer_bytes.size() && !d.closed(kFuzzPeer)) {
    const size_t n = std::min(peer_bytes.size() - delivered, chunker.Next());
    pending.insert(pending.end(), peer_bytes.begin() + static_cast<std::ptrdiff_t>(delivered),
                   peer_bytes.begin() + static_cast<std::ptrdiff_t>(delivered + n));
    delivered += n;
    const size_t consumed = t.HandleBytes(kFuzzPeer, pending, d.now());
    FUZZ_CHECK(consumed <= pending.size());
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(consumed));
    d.Pump(true);
    d.Advance(chunker.LastDelayMs());
    t.HandleTick(d.now());
    d.Pump(false);
  }
  d.Pump(true);
  if (!d.closed(kFuzzPeer)) {
    FUZZ_CHECK(t.IsConnected(kFuzzPeer));
    t.HandlePeerClosed(kFuzzPeer, d.now());
    d.Pump(true);
  }
  FUZZ_CHECK(!t.IsConnected(kFuzzPeer));
  t.Shutdown();
  d.Pump(true);
  FUZZ_CHECK(t.num_peers() == 0);
  FUZZ_CHECK(t.have().count() >= have.count());
  if (std::getenv("TORRENTY_FUZZ_VERBOSE") != nullptr) {
    const engine::TorrentStats& st = t.stats();
    std::fprintf(stderr,
                 "wire_fuzz: flags=0x%02x have %u->%u failed=%u downloaded=%lld uploaded=%lld "
                 "protocol_closes=%u fuzz_peer_closed=%d\n",
                 flags, have.count(), t.have().count(), st.pieces_failed,
                 static_cast<long long>(st.downloaded_payload),
                 static_cast<long long>(st.uploaded_payload), st.peers_closed_for_protocol_errors,
                 d.closed(kFuzzPeer) ? 1 : 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeaderSize) return 0;
  const Bytes stream(data + kHeaderSize, size - kHeaderSize);
  FuzzFramer(data, stream);
  FuzzTorrent(data, stream);
  return 0;
}
