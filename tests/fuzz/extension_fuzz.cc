// Fuzzes BEP 10 and BEP 9 at two levels.
//
// 1. The codecs: the input as an extension handshake and as a ut_metadata message. What parses
//    respects the limits and re-encodes to something that parses the same.
// 2. The metadata fetch of a magnet download (engine::MetadataFetch): after a valid handshake with
//    the extension bit, the input is one peer's byte stream, fed in chunks whose sizes come from
//    the first byte. The fetch may close the peer; it must never crash, accept metadata that does
//    not hash to the info-hash, or send a malformed stream back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/codec/extension.h"
#include "engine/codec/wire.h"
#include "engine/torrent/metadata_fetch.h"
#include "tests/fuzz/fuzz_check.h"

namespace {
namespace engine = torrenty::engine;
namespace ext = torrenty::engine::ext;
namespace wire = torrenty::engine::wire;

void Codecs(absl::Span<const uint8_t> in) {
  absl::StatusOr<ext::Handshake> h = ext::ParseHandshake(in);
  if (h.ok()) {
    FUZZ_CHECK(h->m.size() <= ext::kMaxExtensions);
    FUZZ_CHECK(h->client.size() <= ext::kMaxClientLength);
    FUZZ_CHECK(h->metadata_size == -1 ||
               (h->metadata_size > 0 && h->metadata_size <= ext::kMaxMetadataSize));
    const std::string again = ext::EncodeHandshake(*h);
    absl::StatusOr<ext::Handshake> h2 = ext::ParseHandshake(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
    FUZZ_CHECK(h2.ok());
    FUZZ_CHECK(h2->metadata_size == h->metadata_size && h2->listen_port == h->listen_port);
  }
  absl::StatusOr<ext::MetadataMessage> m = ext::ParseMetadataMessage(in);
  if (m.ok() && m->type == ext::MetadataType::kData) {
    FUZZ_CHECK(m->total_size > 0 && m->total_size <= ext::kMaxMetadataSize);
    FUZZ_CHECK(m->data.size() == ext::MetadataPieceLength(m->total_size, m->piece));
  }
}

void Fetch(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const size_t chunk = 1 + data[0] * 4u;
  absl::Span<const uint8_t> stream(data + 1, size - 1);
  // The info-hash of a 3-byte info dict "de" padded: the fuzzer cannot find a SHA-1 preimage,
  // so done() must stay false unless the bytes really are "d1:ai1ee".
  const std::string info = "d1:ai1ee";
  engine::MetadataFetchConfig config;
  config.info_hash =
      engine::Sha1(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(info.data()), info.size()));
  config.self_id.fill(0x54);
  engine::MetadataFetch fetch(config);
  engine::Instant now{1000};
  fetch.HandlePeerConnected(1, engine::PeerAddress{0x7f000001, 6881}, now);
  std::vector<uint8_t> pending(wire::kHandshakeSize);
  std::array<uint8_t, 8> reserved{};
  reserved[ext::kReservedByte] = ext::kReservedBit;
  engine::PeerId id{};
  wire::EncodeHandshake(config.info_hash, id, reserved, pending.data());
  bool closed = false;
  std::string sent;
  std::vector<engine::Action> actions;
  size_t off = 0;
  while (!closed) {
    const size_t n = std::min(chunk, stream.size() - off);
    pending.insert(pending.end(), stream.begin() + off, stream.begin() + off + n);
    off += n;
    const size_t used = fetch.HandleBytes(1, pending, now);
    FUZZ_CHECK(used <= pending.size());
    pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(used));
    now.ms += 700;
    fetch.HandleTick(now);
    fetch.TakeActions(&actions);
    for (const engine::Action& a : actions) {
      if (a.type == engine::Action::Type::kClose) closed = true;
    }
    for (auto s = fetch.NextSend(1); !s.empty(); s = fetch.NextSend(1)) {
      sent.append(reinterpret_cast<const char*>(s.data()), s.size());
      fetch.HandleSent(1, s.size(), now);
    }
    if (off >= stream.size()) break;
  }
  if (fetch.done()) FUZZ_CHECK(fetch.info_bytes() == info);
  // What we sent: our handshake, then well-formed extended messages only. A peer closed by the
  // first bytes it sent is forgotten with its unsent handshake, so nothing may have gone out.
  if (sent.empty()) return;
  FUZZ_CHECK(sent.size() >= wire::kHandshakeSize);
  absl::Span<const uint8_t> out(reinterpret_cast<const uint8_t*>(sent.data()), sent.size());
  size_t pos = wire::kHandshakeSize;
  while (pos < out.size()) {
    wire::Message msg;
    absl::StatusOr<size_t> n = wire::ParseMessage(out.subspan(pos), 1 << 20, &msg);
    FUZZ_CHECK(n.ok() && *n > 0);
    FUZZ_CHECK(msg.raw_id == ext::kExtendedMsgId && !msg.payload.empty());
    pos += *n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Codecs(absl::MakeConstSpan(data, size));
  Fetch(data, size);
  return 0;
}
