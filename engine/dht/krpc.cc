#include "engine/dht/krpc.h"

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "engine/codec/bencode.h"

namespace torrenty::engine::dht {
namespace {

using bencode::Value;

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(std::string("krpc: ") + std::string(what));
}

const Value* FindString(const Value& d, std::string_view key) {
  const Value* v = d.Find(key);
  return v != nullptr && v->is_string() ? v : nullptr;
}

bool ReadId(const Value& d, std::string_view key, NodeId* out) {
  const Value* v = FindString(d, key);
  if (v == nullptr || v->string.size() != 20) return false;
  *out = NodeIdFromBytes(v->string);
  return true;
}

// Port 0, 0.0.0.0/8 and multicast or broadcast addresses are never a node or a peer; a
// hostile answer would use them to make us send where no node listens.
bool Dialable(const PeerAddress& a) {
  if (a.port == 0) return false;
  if (!a.v6) return (a.ip >> 24) != 0 && a.ip < 0xE0000000u;
  // Unspecified (::) and multicast (ff00::/8); IPv4-mapped entries became IPv4 and are refused
  // by the caller, so a nodes6 list cannot smuggle IPv4 targets.
  if (a.ip6[0] == 0xFF) return false;
  return std::any_of(a.ip6.begin(), a.ip6.end(), [](uint8_t b) { return b != 0; });
}

uint8_t ReadWant(const Value& a) {
  const Value* want = a.Find("want");
  if (want == nullptr || !want->is_list()) return 0;
  uint8_t bits = 0;
  for (size_t i = 0; i < want->list.size() && i < 8; ++i) {
    const Value& v = want->list[i];
    if (!v.is_string()) continue;
    if (v.string == "n4") bits |= kWantN4;
    if (v.string == "n6") bits |= kWantN6;
  }
  return bits;
}

// Reads compact nodes of one family; entries of the other family or undialable are dropped.
absl::Status ReadNodes(const Value& r, std::string_view key, size_t entry, bool v6,
                       std::vector<NodeInfo>* out) {
  const Value* nodes = FindString(r, key);
  if (nodes == nullptr) return absl::OkStatus();
  const std::string_view s = nodes->string;
  if (s.size() % entry != 0) return Bad(std::string(key) + " not a whole number of entries");
  const size_t n = std::min(s.size() / entry, kMaxNodesPerMessage);
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i * entry;
    NodeInfo node;
    std::copy(p, p + 20, node.id.begin());
    node.addr = v6 ? ReadCompactPeer6(p + 20) : ReadCompactPeer(p + 20);
    if (node.addr.v6 != v6 || !Dialable(node.addr)) continue;
    out->push_back(node);
  }
  return absl::OkStatus();
}

Method MethodFromName(std::string_view q) {
  if (q == "ping") return Method::kPing;
  if (q == "find_node") return Method::kFindNode;
  if (q == "get_peers") return Method::kGetPeers;
  if (q == "announce_peer") return Method::kAnnouncePeer;
  return Method::kUnknown;
}

absl::Status DecodeQuery(const Value& top, Message* m) {
  const Value* q = FindString(top, "q");
  const Value* a = top.Find("a");
  if (q == nullptr || a == nullptr || !a->is_dict()) return Bad("query without q or a");
  m->method = MethodFromName(q->string);
  if (!ReadId(*a, "id", &m->id)) return Bad("query without a 20-byte id");
  switch (m->method) {
    case Method::kPing:
    case Method::kUnknown:
      break;
    case Method::kFindNode:
      if (!ReadId(*a, "target", &m->target)) return Bad("find_node without a 20-byte target");
      m->want = ReadWant(*a);
      break;
    case Method::kGetPeers:
      if (!ReadId(*a, "info_hash", &m->info_hash)) return Bad("get_peers without info_hash");
      m->want = ReadWant(*a);
      break;
    case Method::kAnnouncePeer: {
      if (!ReadId(*a, "info_hash", &m->info_hash)) return Bad("announce_peer without info_hash");
      const Value* token = FindString(*a, "token");
      if (token == nullptr || token->string.empty() || token->string.size() > kMaxTokenBytes) {
        return Bad("announce_peer without a token");
      }
      m->token = std::string(token->string);
      const Value* implied = a->Find("implied_port");
      m->implied_port = implied != nullptr && implied->is_int() && implied->integer != 0;
      const Value* port = a->Find("port");
      if (port != nullptr && port->is_int() && port->integer > 0 && port->integer <= 65535) {
        m->port = static_cast<uint16_t>(port->integer);
      } else if (!m->implied_port) {
        return Bad("announce_peer without a port");
      }
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeResponse(const Value& top, Message* m) {
  const Value* r = top.Find("r");
  if (r == nullptr || !r->is_dict()) return Bad("response without r");
  if (!ReadId(*r, "id", &m->id)) return Bad("response without a 20-byte id");
  if (absl::Status st = ReadNodes(*r, "nodes", kCompactNodeBytes, false, &m->nodes); !st.ok()) {
    return st;
  }
  if (absl::Status st = ReadNodes(*r, "nodes6", kCompactNode6Bytes, true, &m->nodes6); !st.ok()) {
    return st;
  }
  if (const Value* token = FindString(*r, "token"); token != nullptr) {
    if (token->string.size() > kMaxTokenBytes) return Bad("token too long");
    m->token = std::string(token->string);
  }
  if (const Value* values = r->Find("values"); values != nullptr) {
    if (!values->is_list()) return Bad("values not a list");
    for (const Value& v : values->list) {
      if (m->values.size() >= kMaxValuesPerMessage) break;
      if (!v.is_string() || (v.string.size() != 6 && v.string.size() != 18)) continue;
      const auto* p = reinterpret_cast<const uint8_t*>(v.string.data());
      const bool v6 = v.string.size() == 18;
      const PeerAddress a = v6 ? ReadCompactPeer6(p) : ReadCompactPeer(p);
      if (a.v6 != v6 || !Dialable(a)) continue;
      m->values.push_back(a);
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeError(const Value& top, Message* m) {
  const Value* e = top.Find("e");
  if (e == nullptr || !e->is_list() || e->list.empty()) return Bad("error without e");
  if (e->list[0].is_int()) m->error_code = e->list[0].integer;
  if (e->list.size() > 1 && e->list[1].is_string()) {
    m->error_message = std::string(e->list[1].string.substr(0, 128));
  }
  return absl::OkStatus();
}

void Key(bencode::Encoder& e, std::string_view k) { e.String(k); }

void Tail(bencode::Encoder& e, std::string_view tid, char y) {
  Key(e, "t");
  e.String(tid);
  Key(e, "v");
  e.String("TY01");
  Key(e, "y");
  e.String(std::string_view(&y, 1));
  e.End();
}

std::string_view Bytes(const NodeId& id) {
  return std::string_view(reinterpret_cast<const char*>(id.data()), id.size());
}

void QueryHead(bencode::Encoder& e, const NodeId& self) {
  e.BeginDict();
  Key(e, "a");
  e.BeginDict();
  Key(e, "id");
  e.String(Bytes(self));
}

void Want(bencode::Encoder& e, uint8_t want) {
  if (want == 0) return;
  Key(e, "want");
  e.BeginList();
  if (want & kWantN4) e.String("n4");
  if (want & kWantN6) e.String("n6");
  e.End();
}

void QueryTail(bencode::Encoder& e, std::string_view tid, std::string_view method,
               std::string* out) {
  e.End();  // "a"
  Key(e, "q");
  e.String(method);
  Tail(e, tid, 'q');
  *out = e.Take();
}

}  // namespace

PeerAddress ReadCompactPeer(const uint8_t* p) {
  PeerAddress a;
  a.ip = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  a.port = static_cast<uint16_t>((p[4] << 8) | p[5]);
  return a;
}

PeerAddress ReadCompactPeer6(const uint8_t* p) {
  std::array<uint8_t, 16> ip;
  std::copy(p, p + 16, ip.begin());
  return PeerAddress::V6(ip, static_cast<uint16_t>((p[16] << 8) | p[17]));
}

void AppendCompactPeer(const PeerAddress& a, std::string* out) {
  if (a.v6) {
    out->append(reinterpret_cast<const char*>(a.ip6.data()), a.ip6.size());
    const char port[2] = {static_cast<char>(a.port >> 8), static_cast<char>(a.port)};
    out->append(port, 2);
    return;
  }
  const char b[6] = {static_cast<char>(a.ip >> 24),  static_cast<char>(a.ip >> 16),
                     static_cast<char>(a.ip >> 8),   static_cast<char>(a.ip),
                     static_cast<char>(a.port >> 8), static_cast<char>(a.port)};
  out->append(b, 6);
}

void AppendCompactNode(const NodeInfo& n, std::string* out) {
  out->append(Bytes(n.id));
  AppendCompactPeer(n.addr, out);
}

absl::StatusOr<Message> DecodeMessage(std::string_view datagram) {
  if (datagram.size() > kMaxDatagramBytes) return Bad("datagram too long");
  bencode::DecodeLimits limits;
  limits.max_depth = 8;
  limits.max_input_bytes = kMaxDatagramBytes;
  limits.max_items = 1024;
  absl::StatusOr<Value> top = bencode::Decode(datagram, limits);
  if (!top.ok()) return Bad(std::string(top.status().message()));
  if (!top->is_dict()) return Bad("not a dict");
  Message m;
  const Value* t = FindString(*top, "t");
  if (t == nullptr || t->string.size() > kMaxTransactionBytes) return Bad("bad transaction id");
  m.transaction = std::string(t->string);
  const Value* y = FindString(*top, "y");
  if (y == nullptr || y->string.size() != 1) return Bad("bad y");
  if (const Value* ro = top->Find("ro"); ro != nullptr && ro->is_int()) {
    m.read_only = ro->integer != 0;
  }
  if (const Value* ip = FindString(*top, "ip"); ip != nullptr) {
    const auto* p = reinterpret_cast<const uint8_t*>(ip->string.data());
    if (ip->string.size() == 6) {
      m.has_ip = true;
      m.ip = ReadCompactPeer(p);
    } else if (ip->string.size() == 18) {
      m.has_ip = true;
      m.ip = ReadCompactPeer6(p);
    }
  }
  absl::Status st;
  switch (y->string[0]) {
    case 'q':
      m.kind = Message::Kind::kQuery;
      st = DecodeQuery(*top, &m);
      break;
    case 'r':
      m.kind = Message::Kind::kResponse;
      st = DecodeResponse(*top, &m);
      break;
    case 'e':
      m.kind = Message::Kind::kError;
      st = DecodeError(*top, &m);
      break;
    default:
      return Bad("unknown message type");
  }
  if (!st.ok()) return st;
  return m;
}

void EncodePing(std::string_view tid, const NodeId& self, std::string* out) {
  bencode::Encoder e;
  QueryHead(e, self);
  QueryTail(e, tid, "ping", out);
}

void EncodeFindNode(std::string_view tid, const NodeId& self, const NodeId& target,
                    std::string* out, uint8_t want) {
  bencode::Encoder e;
  QueryHead(e, self);
  Key(e, "target");
  e.String(Bytes(target));
  Want(e, want);
  QueryTail(e, tid, "find_node", out);
}

void EncodeGetPeers(std::string_view tid, const NodeId& self, const InfoHash& info_hash,
                    std::string* out, uint8_t want) {
  bencode::Encoder e;
  QueryHead(e, self);
  Key(e, "info_hash");
  e.String(Bytes(info_hash));
  Want(e, want);
  QueryTail(e, tid, "get_peers", out);
}

void EncodeAnnouncePeer(std::string_view tid, const NodeId& self, const InfoHash& info_hash,
                        uint16_t port, std::string_view token, std::string* out) {
  bencode::Encoder e;
  QueryHead(e, self);
  Key(e, "implied_port");
  e.Int(0);
  Key(e, "info_hash");
  e.String(Bytes(info_hash));
  Key(e, "port");
  e.Int(port);
  Key(e, "token");
  e.String(token);
  QueryTail(e, tid, "announce_peer", out);
}

void EncodeResponse(std::string_view tid, const NodeId& self, const std::vector<NodeInfo>& nodes,
                    std::string_view token, const std::vector<PeerAddress>& values,
                    const PeerAddress& requester, std::string* out) {
  bencode::Encoder e;
  e.BeginDict();
  Key(e, "ip");
  std::string ip;
  AppendCompactPeer(requester, &ip);
  e.String(ip);
  Key(e, "r");
  e.BeginDict();
  Key(e, "id");
  e.String(Bytes(self));
  std::string compact, compact6;
  for (const NodeInfo& n : nodes) AppendCompactNode(n, n.addr.v6 ? &compact6 : &compact);
  if (!compact.empty()) {
    Key(e, "nodes");
    e.String(compact);
  }
  if (!compact6.empty()) {
    Key(e, "nodes6");
    e.String(compact6);
  }
  if (!token.empty()) {
    Key(e, "token");
    e.String(token);
  }
  if (!values.empty()) {
    Key(e, "values");
    e.BeginList();
    std::string v;
    for (const PeerAddress& a : values) {
      v.clear();
      AppendCompactPeer(a, &v);
      e.String(v);
    }
    e.End();
  }
  e.End();  // "r"
  Tail(e, tid, 'r');
  *out = e.Take();
}

void EncodeError(std::string_view tid, int code, std::string_view message, std::string* out) {
  bencode::Encoder e;
  e.BeginDict();
  Key(e, "e");
  e.BeginList();
  e.Int(code);
  e.String(message);
  e.End();
  Tail(e, tid, 'e');
  *out = e.Take();
}

}  // namespace torrenty::engine::dht
