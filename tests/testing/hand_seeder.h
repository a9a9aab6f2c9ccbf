// The seeder side of one connection, driven by hand, for tests that feed a single leecher
// engine::Torrent block by block: a random single-file torrent, the seeder's opening bytes, the
// leecher's requests read back, and the piece messages that answer them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/sha1.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::testing {

struct HandBlock {
  uint32_t piece, begin, length;
};

class HandSeeder {
 public:
  // `pieces` pieces of `piece_length` random bytes, the last one 1000 bytes short.
  HandSeeder(int64_t piece_length, uint32_t pieces) {
    meta_.name = "payload.bin";
    meta_.piece_length = piece_length;
    meta_.total_length = piece_length * pieces - 1000;
    meta_.files.push_back(engine::FileEntry{{}, meta_.total_length, 0});
    std::mt19937_64 rng(static_cast<uint64_t>(piece_length) ^ pieces);
    payload_.resize(static_cast<size_t>(meta_.total_length));
    for (uint8_t& b : payload_) b = static_cast<uint8_t>(rng());
    for (int64_t off = 0; off < meta_.total_length; off += piece_length) {
      meta_.piece_hashes.push_back(engine::Sha1(absl::MakeConstSpan(payload_).subspan(
          static_cast<size_t>(off),
          static_cast<size_t>(std::min(piece_length, meta_.total_length - off)))));
    }
  }

  const engine::Metainfo& meta() const { return meta_; }

  // What a seeder with every piece sends first: its handshake, bitfield and unchoke.
  std::vector<uint8_t> Opening() const {
    std::vector<uint8_t> in(engine::wire::kHandshakeSize);
    engine::PeerId other{};
    other[0] = 2;
    engine::wire::EncodeHandshake(meta_.info_hash, other, in.data());
    engine::Bitfield all(meta_.num_pieces());
    all.SetAll();
    const size_t at = in.size();
    in.resize(at + engine::wire::kBitfieldHeaderSize + all.bytes().size() +
              engine::wire::kSimpleSize);
    uint8_t* p = in.data() + at;
    p += engine::wire::EncodeBitfield(all.bytes(), p);
    engine::wire::EncodeSimple(engine::wire::MsgType::kUnchoke, p);
    return in;
  }

  // The requests among the messages the leecher sent (its handshake already skipped).
  static void Requests(absl::Span<const uint8_t> out, std::vector<HandBlock>* asked) {
    size_t pos = 0;
    while (pos < out.size()) {
      engine::wire::Message m;
      absl::StatusOr<size_t> n = engine::wire::ParseMessage(out.subspan(pos), 1 << 20, &m);
      if (!n.ok() || *n == 0) break;
      pos += *n;
      if (m.type == engine::wire::MsgType::kRequest) {
        asked->push_back(HandBlock{m.index, m.begin, m.length});
      }
    }
  }

  // Appends the piece message for `b` to `in`; with `corrupt`, one byte of the block is flipped.
  void Answer(const HandBlock& b, bool corrupt, std::vector<uint8_t>* in) const {
    const size_t at = in->size();
    in->resize(at + engine::wire::kPieceHeaderSize + b.length);
    engine::wire::EncodePieceHeader(b.piece, b.begin, b.length, in->data() + at);
    uint8_t* block = in->data() + at + engine::wire::kPieceHeaderSize;
    std::memcpy(block, payload_.data() + int64_t{b.piece} * meta_.piece_length + b.begin, b.length);
    if (corrupt) block[b.length / 2] ^= 0x5A;
  }

 private:
  engine::Metainfo meta_;
  std::vector<uint8_t> payload_;
};

}  // namespace torrenty::testing
