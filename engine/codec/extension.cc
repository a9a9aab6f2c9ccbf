#include "engine/codec/extension.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/codec/bencode.h"

namespace torrenty::engine::ext {
namespace {

absl::Status Error(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("extension: ", what));
}

std::string_view AsView(absl::Span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bencode::DecodeLimits SmallLimits(bool trailing) {
  bencode::DecodeLimits l;
  l.max_depth = 8;
  l.max_input_bytes = kMaxHandshakeSize + kMetadataPieceSize;
  l.max_items = 1024;
  l.allow_trailing_bytes = trailing;
  l.allow_duplicate_keys = true;  // as libtorrent: the first one counts
  return l;
}

}  // namespace

uint8_t Handshake::IdOf(absl::string_view name) const {
  for (const auto& [n, id] : m) {
    if (n == name) return id;
  }
  return 0;
}

absl::StatusOr<Handshake> ParseHandshake(absl::Span<const uint8_t> payload) {
  if (payload.size() > kMaxHandshakeSize) return Error("handshake over 16 KiB");
  absl::StatusOr<bencode::Value> root = bencode::Decode(AsView(payload), SmallLimits(false));
  if (!root.ok()) return Error(absl::StrCat("handshake: ", root.status().message()));
  if (!root->is_dict()) return Error("handshake is not a dict");
  Handshake h;
  if (const bencode::Value* m = root->Find("m")) {
    if (!m->is_dict()) return Error("handshake: m is not a dict");
    if (m->dict.size() > kMaxExtensions) return Error("handshake: more than 64 extensions");
    for (const auto& [name, id] : m->dict) {
      // libtorrent sends ids up to 255; anything else is not an id.
      if (!id.is_int() || id.integer < 0 || id.integer > 255) {
        return Error(absl::StrCat("handshake: bad id for extension '",
                                  absl::string_view(name.data(), std::min<size_t>(name.size(), 64)),
                                  "'"));
      }
      if (name.size() > kMaxNameLength) continue;
      h.m.emplace_back(std::string(name), static_cast<uint8_t>(id.integer));
    }
  }
  if (const bencode::Value* v = root->Find("v"); v != nullptr && v->is_string()) {
    h.client = std::string(v->string.substr(0, kMaxClientLength));
  }
  if (const bencode::Value* p = root->Find("p"); p != nullptr && p->is_int()) {
    if (p->integer > 0 && p->integer <= 65535) h.listen_port = static_cast<uint16_t>(p->integer);
  }
  if (const bencode::Value* r = root->Find("reqq"); r != nullptr && r->is_int()) {
    if (r->integer > 0) h.reqq = static_cast<uint32_t>(std::min<int64_t>(r->integer, 1 << 20));
  }
  if (const bencode::Value* y = root->Find("yourip"); y != nullptr && y->is_string()) {
    if (y->string.size() == 4 || y->string.size() == 16) h.yourip = std::string(y->string);
  }
  if (const bencode::Value* s = root->Find("metadata_size")) {
    if (!s->is_int() || s->integer <= 0) return Error("handshake: bad metadata_size");
    if (s->integer > kMaxMetadataSize) {
      return Error(absl::StrCat("handshake: metadata_size ", s->integer, " over the 16 MiB limit"));
    }
    h.metadata_size = s->integer;
  }
  return h;
}

std::string EncodeHandshake(const Handshake& h) {
  // Keys in byte order, as bencode requires: m, metadata_size, p, reqq, v, yourip.
  bencode::Encoder e;
  e.BeginDict();
  e.String("m");
  e.BeginDict();
  std::vector<std::pair<std::string, uint8_t>> m = h.m;
  std::sort(m.begin(), m.end());
  for (const auto& [name, id] : m) {
    e.String(name);
    e.Int(id);
  }
  e.End();
  if (h.metadata_size > 0) {
    e.String("metadata_size");
    e.Int(h.metadata_size);
  }
  if (h.listen_port != 0) {
    e.String("p");
    e.Int(h.listen_port);
  }
  if (h.reqq != 0) {
    e.String("reqq");
    e.Int(h.reqq);
  }
  if (!h.client.empty()) {
    e.String("v");
    e.String(h.client);
  }
  if (!h.yourip.empty()) {
    e.String("yourip");
    e.String(h.yourip);
  }
  e.End();
  return e.Take();
}

void EncodeHeader(uint8_t ext_id, size_t payload_len, uint8_t* out) {
  const uint32_t len = static_cast<uint32_t>(payload_len + 2);
  out[0] = static_cast<uint8_t>(len >> 24);
  out[1] = static_cast<uint8_t>(len >> 16);
  out[2] = static_cast<uint8_t>(len >> 8);
  out[3] = static_cast<uint8_t>(len);
  out[4] = kExtendedMsgId;
  out[5] = ext_id;
}

uint32_t MetadataPieceCount(int64_t total_size) {
  if (total_size <= 0) return 0;
  return static_cast<uint32_t>((total_size + kMetadataPieceSize - 1) / kMetadataPieceSize);
}

uint32_t MetadataPieceLength(int64_t total_size, uint32_t piece) {
  const int64_t start = int64_t{piece} * kMetadataPieceSize;
  if (start >= total_size) return 0;
  return static_cast<uint32_t>(std::min<int64_t>(kMetadataPieceSize, total_size - start));
}

absl::StatusOr<MetadataMessage> ParseMetadataMessage(absl::Span<const uint8_t> payload) {
  absl::StatusOr<bencode::Value> dict = bencode::Decode(AsView(payload), SmallLimits(true));
  if (!dict.ok()) return Error(absl::StrCat("ut_metadata: ", dict.status().message()));
  if (!dict->is_dict()) return Error("ut_metadata: not a dict");
  const bencode::Value* type = dict->Find("msg_type");
  const bencode::Value* piece = dict->Find("piece");
  if (type == nullptr || !type->is_int() || type->integer < 0 || type->integer > 2) {
    return Error("ut_metadata: bad msg_type");
  }
  if (piece == nullptr || !piece->is_int() || piece->integer < 0 ||
      piece->integer >= MetadataPieceCount(kMaxMetadataSize)) {
    return Error("ut_metadata: bad piece");
  }
  MetadataMessage msg;
  msg.type = static_cast<MetadataType>(type->integer);
  msg.piece = static_cast<uint32_t>(piece->integer);
  const absl::Span<const uint8_t> rest = payload.subspan(dict->raw.size());
  if (msg.type != MetadataType::kData) {
    if (!rest.empty()) return Error("ut_metadata: bytes after a request or reject");
    return msg;
  }
  const bencode::Value* total = dict->Find("total_size");
  if (total == nullptr || !total->is_int() || total->integer <= 0) {
    return Error("ut_metadata: data without a valid total_size");
  }
  if (total->integer > kMaxMetadataSize) {
    return Error(
        absl::StrCat("ut_metadata: total_size ", total->integer, " over the 16 MiB limit"));
  }
  msg.total_size = total->integer;
  const uint32_t want = MetadataPieceLength(msg.total_size, msg.piece);
  if (want == 0) return Error("ut_metadata: piece past total_size");
  if (rest.size() != want) {
    return Error(absl::StrCat("ut_metadata: piece ", msg.piece, " has ", rest.size(),
                              " bytes, total_size says ", want));
  }
  msg.data = rest;
  return msg;
}

namespace {
std::string MetadataDict(MetadataType type, uint32_t piece, int64_t total_size) {
  bencode::Encoder e;
  e.BeginDict();
  e.String("msg_type");
  e.Int(static_cast<int64_t>(type));
  e.String("piece");
  e.Int(piece);
  if (total_size > 0) {
    e.String("total_size");
    e.Int(total_size);
  }
  e.End();
  return e.Take();
}
}  // namespace

std::string EncodeMetadataRequest(uint32_t piece) {
  return MetadataDict(MetadataType::kRequest, piece, -1);
}
std::string EncodeMetadataReject(uint32_t piece) {
  return MetadataDict(MetadataType::kReject, piece, -1);
}
std::string EncodeMetadataDataHeader(uint32_t piece, int64_t total_size) {
  return MetadataDict(MetadataType::kData, piece, total_size);
}

}  // namespace torrenty::engine::ext
