// Serialises NewTorrent with dict keys in the sorted order BEP 3 requires, so the
// info-hash we compute matches any client that re-encodes canonically.
#include "engine/metainfo/torrent_builder.h"

#include "engine/codec/bencode.h"

namespace torrenty::engine {

int64_t DefaultPieceLength(int64_t total_bytes) {
  constexpr int64_t kTargetMaxPieces = 2000;
  int64_t piece = kMinDefaultPieceLength;
  // Doubling halves the count, so stopping at the first count <= 2000 lands above 1000
  // unless a clamp is hit.
  while (piece < kMaxDefaultPieceLength && total_bytes / piece > kTargetMaxPieces) piece *= 2;
  return piece;
}

std::string EncodeTorrent(const NewTorrent& t) {
  bencode::Encoder e;
  e.BeginDict();
  size_t urls = 0;
  const std::string* first = nullptr;
  for (const std::vector<std::string>& tier : t.tiers) {
    if (first == nullptr && !tier.empty()) first = &tier.front();
    urls += tier.size();
  }
  if (first != nullptr) {
    e.String("announce");
    e.String(*first);
  }
  if (urls > 1) {
    e.String("announce-list");
    e.BeginList();
    for (const std::vector<std::string>& tier : t.tiers) {
      if (tier.empty()) continue;
      e.BeginList();
      for (const std::string& url : tier) e.String(url);
      e.End();
    }
    e.End();
  }
  if (!t.comment.empty()) {
    e.String("comment");
    e.String(t.comment);
  }
  if (!t.created_by.empty()) {
    e.String("created by");
    e.String(t.created_by);
  }
  if (t.creation_date != 0) {
    e.String("creation date");
    e.Int(t.creation_date);
  }
  e.String("info");
  e.BeginDict();
  if (t.multi_file) {
    e.String("files");
    e.BeginList();
    for (const FileEntry& f : t.files) {
      e.BeginDict();
      e.String("length");
      e.Int(f.length);
      e.String("path");
      e.BeginList();
      for (const std::string& component : f.path) e.String(component);
      e.End();
      e.End();
    }
    e.End();
  } else {
    e.String("length");
    e.Int(t.files.empty() ? 0 : t.files.front().length);
  }
  e.String("name");
  e.String(t.name);
  e.String("piece length");
  e.Int(t.piece_length);
  e.String("pieces");
  std::string pieces;
  pieces.reserve(t.piece_hashes.size() * 20);
  for (const Sha1Digest& h : t.piece_hashes) pieces.append(h.begin(), h.end());
  e.String(pieces);
  if (t.is_private) {
    e.String("private");
    e.Int(1);
  }
  if (!t.source.empty()) {
    e.String("source");
    e.String(t.source);
  }
  e.End();  // info
  if (!t.web_seeds.empty()) {
    e.String("url-list");
    e.BeginList();
    for (const std::string& url : t.web_seeds) e.String(url);
    e.End();
  }
  e.End();
  return e.Take();
}

}  // namespace torrenty::engine
