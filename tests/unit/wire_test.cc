// Tests for the BEP 3 wire codec: round trips, stream splitting, and malformed input.
#include "engine/codec/wire.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine::wire {
namespace {

constexpr uint32_t kMax = 1 << 20;

std::vector<uint8_t> Bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

MATCHER(IsNeedMore, "is OK and 0 (need more bytes)") { return arg.ok() && *arg == 0; }

// Parses exactly one message that must occupy all of `buf`.
Message ParseOne(const std::vector<uint8_t>& buf) {
  Message m;
  absl::StatusOr<size_t> n = ParseMessage(buf, kMax, &m);
  EXPECT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n.value_or(0), buf.size());
  return m;
}

TEST(WireTest, SimpleMessagesRoundTrip) {
  for (MsgType t :
       {MsgType::kChoke, MsgType::kUnchoke, MsgType::kInterested, MsgType::kNotInterested}) {
    std::vector<uint8_t> buf(kSimpleSize);
    ASSERT_EQ(EncodeSimple(t, buf.data()), 5u);
    EXPECT_EQ(buf, Bytes({0, 0, 0, 1, static_cast<int>(t)}));
    Message m = ParseOne(buf);
    EXPECT_EQ(m.type, t) << MsgTypeName(t);
    EXPECT_EQ(m.raw_id, static_cast<uint8_t>(t));
  }
}

TEST(WireTest, KeepAlive) {
  std::vector<uint8_t> buf(kKeepAliveSize, 0xAA);
  ASSERT_EQ(EncodeKeepAlive(buf.data()), 4u);
  EXPECT_EQ(buf, Bytes({0, 0, 0, 0}));
  EXPECT_EQ(ParseOne(buf).type, MsgType::kKeepAlive);
}

TEST(WireTest, HaveRoundTrip) {
  std::vector<uint8_t> buf(kHaveSize);
  ASSERT_EQ(EncodeHave(0x01020304, buf.data()), 9u);
  EXPECT_EQ(buf, Bytes({0, 0, 0, 5, 4, 1, 2, 3, 4}));
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kHave);
  EXPECT_EQ(m.index, 0x01020304u);
}

TEST(WireTest, RequestAndCancelRoundTrip) {
  std::vector<uint8_t> buf(kRequestSize);
  ASSERT_EQ(EncodeRequest(7, 0x4000, kBlockSize, buf.data()), 17u);
  EXPECT_EQ(buf, Bytes({0, 0, 0, 13, 6, 0, 0, 0, 7, 0, 0, 0x40, 0, 0, 0, 0x40, 0}));
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kRequest);
  EXPECT_EQ(m.index, 7u);
  EXPECT_EQ(m.begin, 0x4000u);
  EXPECT_EQ(m.length, kBlockSize);

  ASSERT_EQ(EncodeCancel(0xFFFFFFFF, 1, 2, buf.data()), 17u);
  m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kCancel);
  EXPECT_EQ(m.index, 0xFFFFFFFFu);
  EXPECT_EQ(m.begin, 1u);
  EXPECT_EQ(m.length, 2u);
}

TEST(WireTest, PieceRoundTrip) {
  std::vector<uint8_t> block(1000);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> buf(kPieceHeaderSize);
  ASSERT_EQ(EncodePieceHeader(3, 0x8000, static_cast<uint32_t>(block.size()), buf.data()), 13u);
  buf.insert(buf.end(), block.begin(), block.end());
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kPiece);
  EXPECT_EQ(m.index, 3u);
  EXPECT_EQ(m.begin, 0x8000u);
  EXPECT_EQ(m.length, block.size());
  ASSERT_EQ(m.payload.size(), block.size());
  EXPECT_TRUE(std::equal(block.begin(), block.end(), m.payload.begin()));
  // The payload borrows the input rather than copying it.
  EXPECT_EQ(m.payload.data(), buf.data() + kPieceHeaderSize);
}

TEST(WireTest, EmptyPieceBlockIsAccepted) {
  std::vector<uint8_t> buf(kPieceHeaderSize);
  EncodePieceHeader(1, 2, 0, buf.data());
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kPiece);
  EXPECT_TRUE(m.payload.empty());
}

TEST(WireTest, BitfieldRoundTrip) {
  const std::vector<uint8_t> bits = Bytes({0xFF, 0x01, 0x80});
  std::vector<uint8_t> buf(kBitfieldHeaderSize + bits.size());
  ASSERT_EQ(EncodeBitfield(bits, buf.data()), 8u);
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kBitfield);
  EXPECT_THAT(std::vector<uint8_t>(m.payload.begin(), m.payload.end()),
              ::testing::ElementsAreArray(bits));
}

TEST(WireTest, PortRoundTrip) {
  std::vector<uint8_t> buf(kPortSize);
  ASSERT_EQ(EncodePort(6881, buf.data()), 7u);
  EXPECT_EQ(buf, Bytes({0, 0, 0, 3, 9, 0x1A, 0xE1}));
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kPort);
  EXPECT_EQ(m.port, 6881);
}

TEST(WireTest, ParseResetsStaleFields) {
  std::vector<uint8_t> buf(kRequestSize);
  EncodeRequest(1, 2, 3, buf.data());
  Message m = ParseOne(buf);
  buf.resize(kSimpleSize);
  EncodeSimple(MsgType::kChoke, buf.data());
  m = ParseOne(buf);
  EXPECT_EQ(m.index, 0u);
  EXPECT_EQ(m.length, 0u);
}

TEST(WireTest, UnknownIdIsSkippedNotAnError) {
  // BEP 10 extended message (id 20) with a 3-byte body.
  const std::vector<uint8_t> buf = Bytes({0, 0, 0, 4, 20, 'a', 'b', 'c'});
  Message m = ParseOne(buf);
  EXPECT_EQ(m.type, MsgType::kUnknown);
  EXPECT_EQ(m.raw_id, 20);
  EXPECT_EQ(m.payload.size(), 3u);
}

TEST(WireTest, OversizeLengthPrefixRejectedBeforeBody) {
  Message m;
  // Only the prefix is present: we must not ask for 4 GiB more.
  EXPECT_FALSE(ParseMessage(Bytes({0xFF, 0xFF, 0xFF, 0xFF}), kMax, &m).ok());
  EXPECT_FALSE(ParseMessage(Bytes({0xFF, 0xFF, 0xFF, 0xFF, 7, 0}), MaxMessageLen(100), &m).ok());
  // One past the limit is rejected; exactly the limit is just incomplete.
  std::vector<uint8_t> hdr(4);
  hdr[3] = 101;
  EXPECT_FALSE(ParseMessage(hdr, 100, &m).ok());
  hdr[3] = 100;
  EXPECT_THAT(ParseMessage(hdr, 100, &m), IsNeedMore());
}

TEST(WireTest, WrongFixedSizesRejected) {
  struct Case {
    int id;
    uint32_t good_len;
  };
  for (const Case c : {Case{0, 1}, Case{1, 1}, Case{2, 1}, Case{3, 1}, Case{4, 5}, Case{6, 13},
                       Case{8, 13}, Case{9, 3}}) {
    for (uint32_t len : {c.good_len - 1, c.good_len + 1, c.good_len + 4}) {
      if (len == 0) continue;  // a zero prefix is a keep-alive, not this message
      std::vector<uint8_t> buf(4 + len, 0);
      buf[3] = static_cast<uint8_t>(len);
      buf[4] = static_cast<uint8_t>(c.id);
      Message m;
      EXPECT_FALSE(ParseMessage(buf, kMax, &m).ok()) << "id " << c.id << " len " << len;
    }
  }
  for (uint32_t len = 1; len < 9; ++len) {
    std::vector<uint8_t> buf(4 + len, 0);
    buf[3] = static_cast<uint8_t>(len);
    buf[4] = 7;
    Message m;
    EXPECT_FALSE(ParseMessage(buf, kMax, &m).ok()) << "piece len " << len;
  }
}

TEST(WireTest, NeedMoreOnShortInput) {
  Message m;
  EXPECT_THAT(ParseMessage({}, kMax, &m), IsNeedMore());
  EXPECT_THAT(ParseMessage(Bytes({0, 0, 0}), kMax, &m), IsNeedMore());
  EXPECT_THAT(ParseMessage(Bytes({0, 0, 0, 5, 4, 0, 0}), kMax, &m), IsNeedMore());
}

// Builds a stream of every message type, then feeds it cut at every offset into a
// reassembly buffer, as a socket would deliver it, and checks the same messages come out.
TEST(WireTest, StreamSplitAtEveryOffset) {
  std::vector<uint8_t> stream;
  auto append = [&stream](auto encode, size_t max_size) {
    const size_t old = stream.size();
    stream.resize(old + max_size);
    stream.resize(old + encode(stream.data() + old));
  };
  const std::vector<uint8_t> bits = Bytes({0xA5, 0x5A, 0xF0});
  std::vector<uint8_t> block(300);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i);
  append([](uint8_t* o) { return EncodeBitfield(Bytes({0xA5, 0x5A, 0xF0}), o); }, 8);
  append([](uint8_t* o) { return EncodeSimple(MsgType::kUnchoke, o); }, 5);
  append([](uint8_t* o) { return EncodeKeepAlive(o); }, 4);
  append([](uint8_t* o) { return EncodeHave(42, o); }, 9);
  append([](uint8_t* o) { return EncodeRequest(1, 2, 3, o); }, 17);
  append(
      [&](uint8_t* o) {
        size_t n = EncodePieceHeader(5, 16384, static_cast<uint32_t>(block.size()), o);
        std::memcpy(o + n, block.data(), block.size());
        return n + block.size();
      },
      kPieceHeaderSize + block.size());
  append([](uint8_t* o) { return EncodeCancel(4, 5, 6, o); }, 17);
  append([](uint8_t* o) { return EncodePort(51413, o); }, 7);
  append([](uint8_t* o) { return EncodeSimple(MsgType::kChoke, o); }, 5);
  const std::vector<MsgType> want = {MsgType::kBitfield, MsgType::kUnchoke, MsgType::kKeepAlive,
                                     MsgType::kHave,     MsgType::kRequest, MsgType::kPiece,
                                     MsgType::kCancel,   MsgType::kPort,    MsgType::kChoke};

  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    std::vector<uint8_t> pending;
    std::vector<MsgType> got;
    size_t piece_bytes = 0;
    auto drain = [&]() {
      size_t off = 0;
      while (true) {
        Message m;
        absl::StatusOr<size_t> n =
            ParseMessage(absl::MakeConstSpan(pending).subspan(off), kMax, &m);
        ASSERT_TRUE(n.ok()) << n.status();
        if (*n == 0) break;
        got.push_back(m.type);
        if (m.type == MsgType::kPiece) {
          piece_bytes = m.payload.size();
          EXPECT_TRUE(std::equal(block.begin(), block.end(), m.payload.begin()));
          EXPECT_EQ(m.index, 5u);
        }
        if (m.type == MsgType::kBitfield) {
          EXPECT_TRUE(std::equal(bits.begin(), bits.end(), m.payload.begin()));
        }
        if (m.type == MsgType::kPort) {
          EXPECT_EQ(m.port, 51413);
        }
        off += *n;
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(off));
    };
    pending.insert(pending.end(), stream.begin(), stream.begin() + static_cast<ptrdiff_t>(cut));
    drain();
    pending.insert(pending.end(), stream.begin() + static_cast<ptrdiff_t>(cut), stream.end());
    drain();
    EXPECT_TRUE(pending.empty()) << "cut " << cut;
    EXPECT_EQ(got, want) << "cut " << cut;
    EXPECT_EQ(piece_bytes, block.size());
  }
}

TEST(WireTest, MaxMessageLen) {
  EXPECT_EQ(MaxMessageLen(0), 9 + kBlockSize);
  EXPECT_EQ(MaxMessageLen(1000), 9 + kBlockSize);
  EXPECT_EQ(MaxMessageLen(8 * 200000), 1u + 200000u);
  EXPECT_EQ(MaxMessageLen(8 * 200000 + 1), 1u + 200001u);
  EXPECT_EQ(MaxMessageLen(0xFFFFFFFF), 1u + 0x20000000u);
}

TEST(WireTest, HandshakeRoundTrip) {
  InfoHash ih;
  PeerId pid;
  for (int i = 0; i < 20; ++i) {
    ih[i] = static_cast<uint8_t>(i);
    pid[i] = static_cast<uint8_t>(100 + i);
  }
  std::vector<uint8_t> buf(kHandshakeSize + 5, 0xEE);  // trailing bytes are ignored
  EncodeHandshake(ih, pid, buf.data());
  EXPECT_EQ(buf[0], 19);
  EXPECT_EQ(std::string(buf.begin() + 1, buf.begin() + 20), "BitTorrent protocol");
  absl::StatusOr<Handshake> hs = ParseHandshake(buf);
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->info_hash, ih);
  EXPECT_EQ(hs->peer_id, pid);
  EXPECT_EQ(hs->reserved, (std::array<uint8_t, 8>{}));

  std::array<uint8_t, 8> reserved{};
  reserved[5] = 0x10;
  EncodeHandshake(ih, pid, reserved, buf.data());
  hs = ParseHandshake(buf);
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ(hs->reserved, reserved);
}

TEST(WireTest, HandshakeBadPstrRejected) {
  std::vector<uint8_t> buf(kHandshakeSize);
  EncodeHandshake(InfoHash{}, PeerId{}, buf.data());
  std::vector<uint8_t> bad = buf;
  bad[0] = 18;
  EXPECT_FALSE(ParseHandshake(bad).ok());
  bad = buf;
  bad[5] = 'X';
  EXPECT_FALSE(ParseHandshake(bad).ok());
}

TEST(WireTest, HandshakeShortRejected) {
  std::vector<uint8_t> buf(kHandshakeSize);
  EncodeHandshake(InfoHash{}, PeerId{}, buf.data());
  EXPECT_FALSE(ParseHandshake(absl::MakeConstSpan(buf).first(kHandshakeSize - 1)).ok());
  EXPECT_FALSE(ParseHandshake({}).ok());
}

}  // namespace
}  // namespace torrenty::engine::wire
